#!/bin/sh
# Bazel's --workspace_status_command (.bazelrc): the git commit the tree is
# built from, for `--version` of stamped builds (--config=release). STABLE_ keys
# re-run only stamped actions when they change; unstamped builds never read them.
# Never fails: a tree outside git (a source tarball) builds as commit "unknown".
commit=$(git rev-parse HEAD 2>/dev/null) || commit=unknown
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  tree=dirty
else
  tree=clean
fi
echo "STABLE_GIT_COMMIT $commit"
echo "STABLE_GIT_TREE $tree"
exit 0
