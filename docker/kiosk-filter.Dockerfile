# The kiosk filter as an OCI image Istio pulls with `oci://` (WasmPlugin `url`).
# Istio accepts two layouts: the Wasm OCI artifact spec, and the "compat" variant: a plain
# container image whose single layer holds the module as `plugin.wasm`. This is the compat
# variant; `docker build` + `docker push` suffice, no OCI artifact tooling needed.
#   scripts/build-filter.sh    # -> dist/kiosk_filter.wasm
#   docker build -f docker/kiosk-filter.Dockerfile -t localhost:5001/kiosk/kiosk-filter:0.1.0 dist
FROM scratch
COPY kiosk_filter.wasm ./plugin.wasm
