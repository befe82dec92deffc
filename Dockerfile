# Builds cecbridge and cecsim as static binaries in a small, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cecbridge ./cmd/cecbridge \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cecsim ./cmd/cecsim
# The spool volume's mount point: it must exist in the image, owned by the
# user the bridge runs as, or a fresh named volume would be root-owned.
RUN mkdir -p /out/var/lib/cecbridge/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cecbridge /out/cecsim /usr/local/bin/
COPY configs/ /etc/cecbridge/
COPY --from=build --chown=nonroot:nonroot /out/var/lib/cecbridge /var/lib/cecbridge
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/cecbridge"]
CMD ["run", "--config", "/etc/cecbridge/compose.yaml"]
