// libcurl on demand, for weft-agent only: the libcurl functions the cloud HTTP
// client calls, defined here so that the binary does not need libcurl.so.4 at
// start-up (with --as-needed the linker then drops it), and loaded with dlopen
// on the first call. libcurl brings ~27 shared libraries (GnuTLS, Kerberos,
// LDAP, SSH, RTMP, nghttp2...) whose relocations and constructors cost an agent
// ~3.5 MB of resident memory (docs/benchmarks.md, "Agent resident memory");
// only the aws-vpc and gce backends ever call libcurl.
//
// A function used by any code of the binary that is missing here keeps
// libcurl.so.4 needed at start-up again: weft_agent_link_test catches that.
// If libcurl.so.4 cannot be loaded, each call fails the way libcurl reports
// failures (CURLE_FAILED_INIT, a null handle), after one log line saying why.

#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>

#include "common/log.h"

namespace {

struct Libcurl {
  bool loaded = false;
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
};

const char* DlError() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown";
}

template <typename Fn>
bool Resolve(void* lib, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(lib, name));
  return *fn != nullptr;
}

const Libcurl& Lib() {
  static const Libcurl lib = [] {
    Libcurl c;
    void* h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      WEFT_LOG(ERROR, "cannot load libcurl.so.4: cloud HTTP requests fail").With("error", DlError());
      return c;
    }
    c.loaded = Resolve(h, "curl_global_init", &c.global_init) && Resolve(h, "curl_easy_init", &c.easy_init) &&
               Resolve(h, "curl_easy_setopt", &c.easy_setopt) && Resolve(h, "curl_easy_perform", &c.easy_perform) &&
               Resolve(h, "curl_easy_getinfo", &c.easy_getinfo) && Resolve(h, "curl_easy_reset", &c.easy_reset) &&
               Resolve(h, "curl_easy_cleanup", &c.easy_cleanup) &&
               Resolve(h, "curl_easy_strerror", &c.easy_strerror) &&
               Resolve(h, "curl_slist_append", &c.slist_append) &&
               Resolve(h, "curl_slist_free_all", &c.slist_free_all);
    if (!c.loaded) {
      WEFT_LOG(ERROR, "libcurl.so.4 lacks a function: cloud HTTP requests fail").With("error", DlError());
    }
    return c;
  }();
  return lib;
}

}  // namespace

// Hidden: the binary's own calls bind here, and nothing is exported that would
// interpose on libcurl's calls to itself once it is loaded.
#define WEFT_CURL_SHIM __attribute__((visibility("hidden")))

extern "C" {

WEFT_CURL_SHIM CURLcode curl_global_init(long flags) { return Lib().loaded ? Lib().global_init(flags) : CURLE_FAILED_INIT; }

WEFT_CURL_SHIM CURL* curl_easy_init() { return Lib().loaded ? Lib().easy_init() : nullptr; }

// Variadic: the third argument is read with the type libcurl itself reads for
// `option`, which the option's number range encodes (CURLOPTTYPE_*).
WEFT_CURL_SHIM CURLcode curl_easy_setopt(CURL* h, CURLoption option, ...) {
  if (!Lib().loaded) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, option);
  CURLcode rc;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    rc = Lib().easy_setopt(h, option, va_arg(ap, long));
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    rc = Lib().easy_setopt(h, option, va_arg(ap, void*));
  } else if (option < CURLOPTTYPE_OFF_T) {
    rc = Lib().easy_setopt(h, option, va_arg(ap, void (*)()));
  } else if (option < CURLOPTTYPE_BLOB) {
    rc = Lib().easy_setopt(h, option, va_arg(ap, curl_off_t));
  } else {
    rc = Lib().easy_setopt(h, option, va_arg(ap, void*));  // struct curl_blob*
  }
  va_end(ap);
  return rc;
}

// Every CURLINFO takes a pointer to where the answer goes.
WEFT_CURL_SHIM CURLcode curl_easy_getinfo(CURL* h, CURLINFO info, ...) {
  if (!Lib().loaded) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  CURLcode rc = Lib().easy_getinfo(h, info, va_arg(ap, void*));
  va_end(ap);
  return rc;
}

WEFT_CURL_SHIM CURLcode curl_easy_perform(CURL* h) { return Lib().loaded ? Lib().easy_perform(h) : CURLE_FAILED_INIT; }

WEFT_CURL_SHIM void curl_easy_reset(CURL* h) {
  if (Lib().loaded) Lib().easy_reset(h);
}

WEFT_CURL_SHIM void curl_easy_cleanup(CURL* h) {
  if (Lib().loaded) Lib().easy_cleanup(h);
}

WEFT_CURL_SHIM const char* curl_easy_strerror(CURLcode code) {
  return Lib().loaded ? Lib().easy_strerror(code) : "libcurl.so.4 could not be loaded";
}

WEFT_CURL_SHIM curl_slist* curl_slist_append(curl_slist* list, const char* s) {
  return Lib().loaded ? Lib().slist_append(list, s) : nullptr;
}

WEFT_CURL_SHIM void curl_slist_free_all(curl_slist* list) {
  if (Lib().loaded) Lib().slist_free_all(list);
}

}  // extern "C"
