#include "controller/callback_queue_waker.h"

#include <algorithm>
#include <utility>

#include "grpc/support/cpu.h"

namespace weft::controller {
namespace {

// No server has this method; a call on a lame channel goes nowhere anyway.
const char kWakeMethod[] = "/weft.internal.CallbackQueueWaker/Wake";

}  // namespace

// What one call needs until it completes.
struct CallbackQueueWaker::Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

int CallbackQueueWaker::NextingThreads() {
  return static_cast<int>(std::clamp(gpr_cpu_num_cores() / 2, 2u, 16u));
}

CallbackQueueWaker::CallbackQueueWaker(Options options)
    : options_(std::move(options)),
      calls_per_period_(options_.calls_per_period > 0 ? options_.calls_per_period : NextingThreads()),
      // No credentials: a lame channel (grpcpp/create_channel.h), whose calls fail at once.
      stub_(grpc::CreateChannel("", nullptr)) {}

CallbackQueueWaker::~CallbackQueueWaker() { Stop(); }

void CallbackQueueWaker::Start() {
  absl::MutexLock l(&mu_);
  if (stopped_ || timer_ != 0) return;
  timer_ = timers_.Every(options_.period, [this] { Wake(); });
}

void CallbackQueueWaker::Stop() {
  Timers::Id timer;
  {
    absl::MutexLock l(&mu_);
    stopped_ = true;
    timer = std::exchange(timer_, 0);
  }
  // Not under mu_: Wake takes it, and Cancel waits for a running Wake.
  if (timer != 0) timers_.Cancel(timer);
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(+[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
}

void CallbackQueueWaker::Wake() {
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    in_flight_ += calls_per_period_;
  }
  for (int i = 0; i < calls_per_period_; ++i) {
    auto* call = new Call;
    grpc::Slice empty;  // an empty message: gRPC refuses to send a ByteBuffer with no slice
    call->request = grpc::ByteBuffer(&empty, 1);
    stub_.UnaryCall(&call->context, kWakeMethod, grpc::StubOptions(), &call->request, &call->response,
                    [this, call](grpc::Status status) { Done(call, status); });
  }
}

void CallbackQueueWaker::Done(Call* call, const grpc::Status& status) {
  delete call;
  if (options_.on_complete) options_.on_complete(status);
  absl::MutexLock l(&mu_);
  --in_flight_;  // the last touch of `this`: Stop may return and the waker go
}

}  // namespace weft::controller
