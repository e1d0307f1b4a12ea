# Herald in a container: a static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION=v1.2.3 -t herald .
#   docker run -p 8080:8080 -v herald-data:/data herald
#
# The embedded default keeps its SQLite database, JetStream store and
# secret key under /data; mount a volume there. Scaled out, set
# HERALD_DATABASE_URL, HERALD_NATS_URL and HERALD_SECRET_KEY instead
# (docs/operations.md). Every flag of "herald serve" may follow the image
# name, and every HERALD_* variable applies.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same command docs' TestDockerfileBuild runs.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/heraldhq/herald/internal/cli.Version=${VERSION}" -o /out/herald ./cmd/herald
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /herald
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot
VOLUME /data
EXPOSE 8080
ENV HERALD_DATA_DIR=/data HERALD_HTTP_ADDR=0.0.0.0:8080
ENTRYPOINT ["/herald", "serve"]
