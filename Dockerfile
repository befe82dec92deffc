# Builds cecbridge and cecsim as static binaries in a small, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cecbridge ./cmd/cecbridge \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cecsim ./cmd/cecsim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cecbridge /out/cecsim /usr/local/bin/
COPY configs/ /etc/cecbridge/
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/cecbridge"]
CMD ["run", "--config", "/etc/cecbridge/compose.yaml"]
