package acme

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/caddyserver/certmagic"
	"github.com/libdns/cloudflare"
	"github.com/libdns/rfc2136"
	"github.com/libdns/route53"
)

// DNSOptions are the DNS provider's settings (ACME_DNS_PROVIDER and the
// variables it reads).
type DNSOptions struct {
	Provider string // rfc2136, cloudflare, route53

	RFC2136Server, RFC2136KeyName, RFC2136Key, RFC2136KeyAlg string
	CloudflareToken                                          string
	Route53ZoneID                                            string
}

// NewDNSProvider makes the libdns provider certmagic solves DNS-01 with.
// Its errors name the variable to fix. Route 53's credentials come from the
// AWS SDK's usual chain (variables, shared files, a role), which is asked
// once here so that a proxy without any stops at start, not at its first
// order.
func NewDNSProvider(ctx context.Context, o DNSOptions) (certmagic.DNSProvider, error) {
	switch o.Provider {
	case "rfc2136":
		server := o.RFC2136Server
		if !strings.Contains(strings.TrimPrefix(server, "["), "]:") && strings.Count(server, ":") != 1 {
			server += ":53"
		}
		alg := strings.ToLower(o.RFC2136KeyAlg)
		if !strings.HasSuffix(alg, ".") {
			alg += "."
		}
		name := o.RFC2136KeyName
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		return &rfc2136.Provider{Server: server, KeyName: name, Key: o.RFC2136Key, KeyAlg: alg}, nil
	case "cloudflare":
		return &cloudflare.Provider{APIToken: o.CloudflareToken}, nil
	case "route53":
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cfg, err := config.LoadDefaultConfig(ctx)
		if err == nil {
			_, err = cfg.Credentials.Retrieve(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("ACME_DNS_PROVIDER=route53: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or run with a role): %w", err)
		}
		return &route53.Provider{HostedZoneID: o.Route53ZoneID}, nil
	}
	return nil, fmt.Errorf("ACME_DNS_PROVIDER=%q: want rfc2136, cloudflare or route53", o.Provider)
}
