#pragma once
// Network namespaces for tests that need a real kernel: each NetNs is a named
// namespace (/run/netns/wft<pid>-<n>-<tag>, so `ip netns exec` sees it and parallel
// test processes never collide), destroyed with everything in it when the object
// goes away, even when the test fails. Namespaces left by a test process that died
// (crash, SIGKILL) are removed by the next Create in any process.
//
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): use with weft_cc_test(root = True).

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/subprocess.h"

namespace weft::testing {

class NetNs {
 public:
  // `tag` (a few letters) makes the name readable: "wft1234-0-hosta".
  static absl::StatusOr<std::unique_ptr<NetNs>> Create(absl::string_view tag);
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }

  // Runs `fn` on a thread that entered this namespace and returns what it returns.
  // Sockets `fn` opens stay in the namespace for their whole life, so a netlink
  // socket created here can be used from any thread afterwards.
  template <typename F>
  std::invoke_result_t<F> Run(F&& fn) {
    using R = std::invoke_result_t<F>;
    absl::Status entered;
    if constexpr (std::is_void_v<R>) {
      std::thread t([&] {
        entered = Enter();
        if (entered.ok()) fn();
      });
      t.join();
      CheckEntered(entered);
    } else {
      std::optional<R> result;
      std::thread t([&] {
        entered = Enter();
        if (entered.ok()) result.emplace(fn());
      });
      t.join();
      CheckEntered(entered);
      return std::move(*result);
    }
  }

  // Runs a program inside the namespace.
  absl::StatusOr<CommandResult> Exec(const std::vector<std::string>& argv,
                                     absl::string_view input = "");
  // Runs `sh -c command` inside the namespace; an error unless it exits 0.
  absl::StatusOr<std::string> Sh(absl::string_view command);

  // Removes namespaces named wft<pid>-* whose process no longer exists.
  static void RemoveStale();

 private:
  NetNs(std::string name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}
  absl::Status Enter();  // setns on the calling thread
  static void CheckEntered(const absl::Status& s);

  std::string name_;
  std::string path_;
};

// Joins `a` and `b` with a veth pair (`a_if` in a, `b_if` in b), gives each end
// its address ("192.0.2.1/24") and brings both up.
absl::Status ConnectVeth(NetNs& a, absl::string_view a_if, absl::string_view a_cidr, NetNs& b,
                         absl::string_view b_if, absl::string_view b_cidr);

}  // namespace weft::testing
