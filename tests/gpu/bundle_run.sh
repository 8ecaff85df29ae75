# tests/gpu/bundle_run.sh - sourced by the device scripts (final.sh, multi.sh,
# h200_full.sh): run BIN ARGS... starts bundle $B's binary through the bundle's
# own loader and libraries (tests/gpu/bundle.sh packs them), so it runs on a
# device image that lacks the project's libraries.
run() { local bin=$1; shift
    "$PWD/$B/lib/ld-linux-x86-64.so.2" --library-path "$PWD/$B/lib:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64" "$PWD/$B/bin/$bin" "$@"; }
