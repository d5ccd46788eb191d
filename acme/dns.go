package acme

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/caddyserver/certmagic"
	"github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
	"github.com/libdns/rfc2136"
	"github.com/libdns/route53"
	"github.com/miekg/dns"
)

// DNSOptions are the DNS provider's settings (ACME_DNS_PROVIDER and the
// variables it reads).
type DNSOptions struct {
	Provider string // rfc2136, cloudflare, route53

	RFC2136Server                             string // host:port (config.DNSServer)
	RFC2136KeyName, RFC2136Key, RFC2136KeyAlg string
	CloudflareToken                           string
	Route53ZoneID                             string
}

// NewDNSProvider makes the libdns provider certmagic solves DNS-01 with.
// Its errors name the variable to fix. Route 53's credentials come from the
// AWS SDK's usual chain (variables, shared files, a role), which is asked
// once here so that a proxy without any stops at start, not at its first
// order.
func NewDNSProvider(ctx context.Context, o DNSOptions) (certmagic.DNSProvider, error) {
	switch o.Provider {
	case "rfc2136":
		alg := strings.ToLower(o.RFC2136KeyAlg)
		if !strings.HasSuffix(alg, ".") {
			alg += "."
		}
		name := o.RFC2136KeyName
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		return rfc2136Provider{&rfc2136.Provider{Server: o.RFC2136Server, KeyName: name, Key: o.RFC2136Key, KeyAlg: alg}}, nil
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

// ErrDNSRefused is a DNS provider's error when the DNS server refused to
// change the challenge's record: for RFC 2136, it did not accept the TSIG
// key.
var ErrDNSRefused = errors.New("the DNS server refused the update")

// rfc2136Provider says which settings to check when the server refuses
// an update, rather than miekg/dns's bare "bad authentication" (a NOTAUTH
// answer: an unknown key name or a wrong secret).
type rfc2136Provider struct{ *rfc2136.Provider }

func (p rfc2136Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	r, err := p.Provider.AppendRecords(ctx, zone, recs)
	return r, p.refused(err)
}

func (p rfc2136Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	r, err := p.Provider.DeleteRecords(ctx, zone, recs)
	return r, p.refused(err)
}

func (p rfc2136Provider) refused(err error) error {
	if errors.Is(err, dns.ErrAuth) || errors.Is(err, dns.ErrSig) {
		return fmt.Errorf("%w (RFC2136_SERVER=%s): check that RFC2136_KEY_NAME=%s and RFC2136_KEY are a key it accepts for the zone (TSIG: %w)",
			ErrDNSRefused, p.Server, strings.TrimSuffix(p.KeyName, "."), err)
	}
	return err
}
