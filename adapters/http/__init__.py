"""The v1 HTTP API (../shared/design/API.md) over the service port."""
