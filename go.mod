module github.com/cloudxr-wss-proxy/cloudxr-wss-proxy

go 1.26.8

require (
	github.com/caarlos0/env/v11 v11.4.2
	github.com/pires/go-proxyproto v0.15.0
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
	golang.org/x/sys v0.50.0
)

require go.uber.org/multierr v1.10.0 // indirect
