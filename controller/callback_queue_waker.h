#pragma once
// CallbackQueueWaker: keeps gRPC's callback completion queue from idling, so
// the first request after a quiet second is not held up to 100 ms.
//
// Why: Debian's gRPC 1.51 (no EventEngine-driven callback queue) runs every
// callback-API operation of the process, server and client side, through one
// global "CallbackAlternativeCQ" drained by clamp(cores / 2, 2, 16)
// "nexting_thread"s (src/cpp/common/completion_queue_cc.cc). Each waits for an
// event with a 1 s deadline and, when that passes with none, sleeps 100 ms
// before waiting again. All of Weft's controller services are callback
// services: after a second without a call (a quiet cluster), an AcquireLease
// and the fan-out of its change waited up to 100 ms for a thread to wake
// (docs/benchmarks.md, "The slow first change at 1,000 agents").
//
// What: every `period` it starts `calls_per_period` client callback calls on
// a lame channel of its own (grpc::CreateChannel without credentials: "a
// channel on which all operations fail"). Each fails at once in the client,
// and its completion is delivered through that same global queue, waking a
// nexting thread and restarting its 1 s wait. Nothing is sent anywhere: no
// server sees the call, no Weft handler runs, nothing is counted in Weft's
// metrics and no authorization is asked for. (A call over the server's
// InProcessChannel, even one cancelled or past its deadline before it starts,
// still reaches the server, which answers it as an unknown method.)
//
// It can go once Weft's gRPC runs the callback queue on the EventEngine
// (later releases; grpc_core::IsEventEngineCallbackCqEnabled), which has no
// such sleep.
//
// Thread-safe. Start() once; Stop() (also from the destructor): when it
// returns no call is in flight and no other starts.

#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace weft::controller {

class CallbackQueueWaker {
 public:
  struct Options {
    // Well below the nexting threads' 1 s deadline, so a late timer tick on a
    // busy machine still comes in time.
    absl::Duration period = absl::Milliseconds(250);
    // 0: one per nexting thread gRPC starts (NextingThreads()), since one
    // completion wakes one thread.
    int calls_per_period = 0;
    // Tests: called on gRPC's thread as each call completes, with its status.
    std::function<void(const grpc::Status&)> on_complete;
    Clock* clock = &RealClock::Get();  // not owned
  };

  explicit CallbackQueueWaker(Options options);
  ~CallbackQueueWaker();
  CallbackQueueWaker(const CallbackQueueWaker&) = delete;
  CallbackQueueWaker& operator=(const CallbackQueueWaker&) = delete;

  void Start();
  // Ends the timer, then waits for the calls in flight to complete.
  void Stop();

  // How many nexting threads gRPC 1.51 starts on this machine (as it does:
  // gpr_cpu_num_cores() / 2, clamped to 2..16).
  static int NextingThreads();

 private:
  struct Call;
  // One period's calls.
  void Wake();
  void Done(Call* call, const grpc::Status& status);

  const Options options_;
  const int calls_per_period_;
  grpc::GenericStub stub_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  Timers::Id timer_ ABSL_GUARDED_BY(mu_) = 0;
  Timers timers_{*options_.clock};  // last: cancelled first on destruction
};

}  // namespace weft::controller
