# The quorate image: the `quorate` binary on a distroless base, running as non-root.
#   docker build -t quorate:0.1.0 .
# Build steps are the documented ones (docs/deploy.md); crates/cli/src/deploy_check.rs
# checks that they stay so.
FROM rust:1.85-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p quorate-cli --bin quorate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/quorate /usr/local/bin/quorate
USER 65532:65532
# 7000/udp: QUIC between members; 9000/tcp: the admin endpoint
EXPOSE 7000/udp 9000/tcp
ENTRYPOINT ["/usr/local/bin/quorate"]
CMD ["run", "--config", "/etc/quorate/quorate.toml"]
