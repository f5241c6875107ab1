"""Weft's wrappers around the native C++ rules, so compiler options and common
dependencies change in one place, and a protoc/gRPC code generator that works
offline with Debian's protoc and grpc_cpp_plugin."""

# Warnings are errors in Weft's own code (not in generated code or system
# headers) in the builds the test suite makes (.bazelrc: --define=weft_werror=on,
# fastbuild). Optimized and instrumented builds (release, asan, fuzz with clang)
# keep warnings as warnings: gcc's flow-dependent ones at -O2 must not stop a
# release build of a tree the suite has passed.
WEFT_COPTS = ["-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"] + select({
    "//bazel:werror": ["-Werror"],
    "//conditions:default": [],
})

def weft_cc_library(name, deps = [], copts = [], **kwargs):
    native.cc_library(
        name = name,
        copts = WEFT_COPTS + copts,
        deps = deps + ["@sys//:absl"],
        **kwargs
    )

def weft_cc_binary(name, deps = [], copts = [], **kwargs):
    native.cc_binary(
        name = name,
        copts = WEFT_COPTS + copts,
        deps = deps + ["@sys//:absl"],
        **kwargs
    )

def weft_cc_test(name, deps = [], copts = [], root = False, tags = [], **kwargs):
    """A GoogleTest test. root = True for tests that need root powers (netns,
    VXLAN, TUN, netlink): they run outside Bazel's sandbox, one at a time."""
    extra_tags = ["no-sandbox", "root", "exclusive"] if root else []
    native.cc_test(
        name = name,
        copts = WEFT_COPTS + copts,
        deps = deps + ["@sys//:absl", "@sys//:gtest_main"],
        tags = tags + extra_tags,
        **kwargs
    )

def weft_proto_library(name, srcs, grpc = True, deps = [], proto_deps = [], visibility = None):
    """Generates C++ (and gRPC) code from .proto files with the system protoc.

    srcs are paths relative to the package; imports resolve from the workspace root
    (so `import "proto/weft/v1/x.proto"`)."""
    outs = []
    for s in srcs:
        base = s[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    pkg = native.package_name()
    cmd = "protoc -I. --cpp_out=$(GENDIR) "
    if grpc:
        cmd += "--grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=$$(which grpc_cpp_plugin) "
    cmd += " ".join([pkg + "/" + s for s in srcs])
    native.genrule(
        name = name + "_gen",
        srcs = srcs + proto_deps,
        outs = outs,
        cmd = cmd,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@sys//:grpcpp"],
        visibility = visibility,
    )

def weft_cc_fuzz(name, srcs, deps = [], copts = [], corpus = None, **kwargs):
    """A libFuzzer target `name` (tagged manual: built by tools/fuzz.sh with
    --config=fuzz, clang 14) and `name`_corpus_test, a plain unit test that runs
    the same entry point over every file of its seed corpus (by default
    tests/fuzz/corpus/<name>/, where crash reproducers are kept too), so the
    ordinary and sanitizer suites replay every input any fuzzer has found."""
    corpus = corpus or "corpus/" + name
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = WEFT_COPTS + copts,
        linkopts = ["-fsanitize=fuzzer"],
        deps = deps + ["@sys//:absl"],
        tags = ["manual", "fuzz"],
        testonly = True,
        **kwargs
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = srcs,
        copts = WEFT_COPTS + copts,
        args = ["$(rootpath %s)" % (corpus + "/README")],
        data = native.glob([corpus + "/**"]),
        deps = deps + ["@sys//:absl", "//tests/fuzz:standalone_main"],
        **kwargs
    )
