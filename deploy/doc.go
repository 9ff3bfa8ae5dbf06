// Package deploy holds rtpbridge's deployment files (Docker, Kubernetes, systemd, Prometheus,
// nginx; see README.md here) and, in its tests, the static checks that keep them consistent
// with each other, with the Dockerfile and docker-compose.yml at the repository root, and with
// PROTOCOL.md. `go test ./deploy/` runs them; they need no Docker engine and no cluster.
package deploy
