package portal

import (
	"html/template"
	"net/http"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// home is the page a headset sees on its first visit: proof that TLS works,
// the runtime's state, and how to trust the certificate for good.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	st := p.snapshotFor(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	pageTemplate.Execute(w, map[string]any{
		"S":       st,
		"Host":    r.Host,
		"WebPath": p.webPath(),
		"Days":    int(time.Until(st.Certificate.NotAfter).Hours() / 24),
		// An ACME CA's certificate needs no trust steps.
		"Public": st.Certificate.Mode == string(certs.ModeACME),
	})
}

func (p *Portal) webPath() string {
	if p.static == nil {
		return ""
	}
	return p.opts.WebPath
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CloudXR proxy: certificate accepted</title>
<style>
  :root { color-scheme: dark; }
  body { margin: 0; padding: 2rem 1.5rem 4rem; font: 1.35rem/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         background: #101418; color: #eef2f5; }
  main { max-width: 46rem; margin: 0 auto; }
  h1 { font-size: 2.1rem; line-height: 1.25; margin: 0 0 .5rem; }
  h2 { font-size: 1.5rem; margin: 2.2rem 0 .6rem; border-bottom: 1px solid #33404a; padding-bottom: .3rem; }
  .ok { color: #5fd38a; } .bad { color: #ff7a6b; }
  .card { background: #1a2127; border-radius: .8rem; padding: 1rem 1.25rem; margin: .8rem 0; }
  code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.05rem; word-break: break-all; }
  a.button { display: inline-block; margin: .35rem .5rem .35rem 0; padding: .8rem 1.2rem; border-radius: .6rem;
             background: #2f6fdf; color: #fff; text-decoration: none; font-weight: 600; }
  a { color: #8cb8ff; }
  details { margin: .6rem 0; background: #1a2127; border-radius: .8rem; padding: .7rem 1.1rem; }
  summary { cursor: pointer; font-weight: 600; font-size: 1.4rem; padding: .3rem 0; }
  ol { padding-left: 1.6rem; } li { margin: .35rem 0; }
  dt { color: #9fb0bd; font-size: 1.05rem; margin-top: .5rem; } dd { margin: 0; }
</style>
</head>
<body><main>
<h1><span class="ok">&#10004;</span> The certificate is accepted &mdash; this proxy works.</h1>
<p>This page came over TLS from the CloudXR proxy at <span class="mono">{{.Host}}</span>.
Connect your CloudXR.js client to <span class="mono">wss://{{.Host}}/</span>.</p>

<div class="card" id="backend">
{{with .S.Backend}}{{if .Up}}<strong class="ok">&#9679; CloudXR runtime is up</strong>{{else if .Problem}}<strong class="bad">&#9679; Something else is listening where the CloudXR runtime should be</strong>{{else}}<strong class="bad">&#9679; CloudXR runtime is not reachable</strong>{{end}}
at <span class="mono">{{.Address}}</span> (since {{.Since.Format "2006-01-02 15:04:05 MST"}}).
{{if .Problem}}<br>The checks found {{.Problem}}. Stop that program or point BACKEND_HOST and BACKEND_PORT at the runtime.{{else if not .Up}}<br>Start the runtime; sessions will work as soon as it accepts connections.{{end}}{{end}}
{{with .S.Routing}}<strong>Routing by path</strong>: {{.By}}.<br>Checked: {{.Checked}}.{{end}}
{{with .S.Pool}}<strong>Runtime pool</strong>: each new session gets a free runtime; an ended session's runtime stays its user's for {{.GraceText}}.
{{.Counts.free}} free, {{.Counts.busy}} busy, {{.Counts.grace}} in grace, {{.Counts.down}} down. {{if .Problem}}<br><span class="bad">{{.Problem}}</span>{{end}}
{{range .Runtimes}}<br>{{if .Up}}<span class="ok">&#9679;</span>{{else}}<span class="bad">&#9679;</span>{{end}} <span class="mono">{{.Address}}</span> {{.State}}{{if not .Since.IsZero}} since {{.Since.Format "2006-01-02 15:04:05 MST"}}{{end}}{{with .User}} ({{.}}){{end}}{{with .Problem}}: the checks found {{.}}{{end}}{{end}}{{end}}
{{range .S.RoutedBackends}}<br>{{if .Up}}<span class="ok">&#9679;</span>{{else}}<span class="bad">&#9679;</span>{{end}} <span class="mono">{{.Address}}</span> {{.State}} since {{.Since.Format "2006-01-02 15:04:05 MST"}}{{end}}
</div>
{{with .S.Authentication}}<div class="card" id="authentication">
{{if .Accepted}}<strong class="ok">&#9679; Your token is accepted.</strong>{{else}}<strong class="bad">&#9679; This proxy requires a token.</strong>{{end}}
Every session needs one: a CloudXR.js client sends it in the signaling URL
(<span class="mono">signalingQueryParameters: { {{.QueryParam}}: &lt;token&gt; }</span>),
a native client as the header <span class="mono">{{.Header}}</span>,
a web page served by this proxy as the <span class="mono">{{.Cookie}}</span> cookie.
Ask whoever runs this proxy for a token.</div>
{{end}}
{{if .WebPath}}<p><a class="button" href="{{.WebPath}}">Open the web client</a></p>{{end}}

<h2>Certificate</h2>
<dl class="card">
  <dt>SHA-256 fingerprint</dt><dd class="mono" id="fingerprint">{{.S.Certificate.SHA256}}</dd>
  <dt>Valid</dt><dd>{{.S.Certificate.NotBefore.Format "2006-01-02"}} to {{.S.Certificate.NotAfter.Format "2006-01-02"}} ({{.Days}} days left)</dd>
  <dt>Names</dt><dd class="mono">{{range .S.Certificate.DNSNames}}{{.}} {{end}}{{range .S.Certificate.IPAddresses}}{{.}} {{end}}</dd>
{{if .Public}}  <dt>Issued by</dt><dd>{{.S.TrustAnchor.Subject}}, through ACME</dd>
</dl>
<p id="publicly-trusted">This certificate is publicly trusted: browsers and headsets accept it as they are, with nothing to
install or click through. The proxy renews it by itself before it expires.</p>
{{else}}  <dt>Trust this to stop the warnings</dt><dd>{{.S.TrustAnchor.Subject}}<br><span class="mono">{{.S.TrustAnchor.SHA256}}</span></dd>
</dl>
<p>
  <a class="button" href="/ca.crt">Download {{if .S.TrustAnchor.IsCA}}CA{{else}}certificate{{end}} (.crt)</a>
  <a class="button" href="/ca.cer">.cer (DER)</a>
  <a class="button" href="/ca.mobileconfig">Apple profile</a>
</p>
<p>{{if .S.TrustAnchor.IsCA}}Trust this CA once on each device: every certificate this proxy issues later is signed by it,
so you will not have to do it again.{{else}}This is a single certificate: trust it on each device; trust it again if it is ever replaced.{{end}}</p>

<h2>Trust it on your device</h2>
<details><summary>Meta Quest 3</summary><ol>
  <li>You are on this page, so the Quest Browser has accepted the certificate for <span class="mono">{{.Host}}</span>
      (after <em>Advanced &rarr; Proceed</em>). That covers the <span class="mono">wss://</span> connection to the same address.</li>
  <li>Keep using the same address (name or IP) in the client; another address needs its own visit.</li>
  <li>If the browser forgets the exception (after clearing data or an update), open this page again.</li>
</ol></details>
<details><summary>Pico 4 Ultra</summary><ol>
  <li>Tap <em>Download CA (.crt)</em> above.</li>
  <li>Open <em>Settings &rarr; General &rarr; Security</em> (or the Android settings' <em>Encryption &amp; credentials</em>),
      choose <em>Install a certificate &rarr; CA certificate</em> and pick the downloaded file.</li>
  <li>Or accept it per address as on the Quest: <em>Advanced &rarr; Proceed</em> on this page.</li>
</ol></details>
<details><summary>Apple Vision Pro (and iPhone, iPad)</summary><ol>
  <li>In Safari tap <em>Apple profile</em> above and allow the download.</li>
  <li>Open <em>Settings &rarr; General &rarr; VPN &amp; Device Management</em>, choose the downloaded profile and install it.</li>
  <li>Open <em>Settings &rarr; General &rarr; About &rarr; Certificate Trust Settings</em> and turn on full trust for
      <em>{{.S.TrustAnchor.Subject}}</em>. Safari does not open <span class="mono">wss://</span> to a certificate that was only clicked through.</li>
</ol></details>
<details><summary>Windows 10/11 (Edge, Chrome)</summary><ol>
  <li>Download the <em>.cer</em> above.</li>
  <li>Double-click it, <em>Install Certificate &rarr; Local Machine &rarr; Place all certificates in the following store &rarr;
      Trusted Root Certification Authorities</em>; or, in a terminal run as administrator:
      <span class="mono">certutil -addstore -f Root cloudxr-wss-proxy-ca.cer</span>
      (<span class="mono">certutil -user -addstore Root cloudxr-wss-proxy-ca.cer</span> for your account only, no administrator needed).</li>
  <li>Restart the browser. Edge and Chrome read the Windows store; Firefox has its own (<em>Settings &rarr; Privacy &amp; Security &rarr;
      Certificates &rarr; View Certificates &rarr; Authorities &rarr; Import</em>).</li>
  <li>To remove it later: <span class="mono">certutil -delstore Root "{{.S.TrustAnchor.Subject}}"</span>.</li>
</ol></details>
<details><summary>Desktop Chrome or Edge on Linux and macOS</summary><ol>
  <li>Download the <em>.crt</em> above.</li>
  <li>Open <span class="mono">chrome://certificate-manager</span> (or <em>Settings &rarr; Privacy and security &rarr; Security &rarr; Manage certificates</em>),
      then <em>Local certificates &rarr; Custom &rarr; Trusted certificates &rarr; Import</em>.</li>
  <li>macOS: double-click the <em>.cer</em>, then in Keychain Access set it to <em>Always Trust</em>.</li>
</ol></details>

{{end}}
<h2>For developers</h2>
<p>Status as JSON, readable cross-origin: <a href="/status.json" class="mono">/status.json</a>.
Fetch it before opening the WebSocket to learn whether the certificate is accepted and the runtime is up.</p>
<p class="mono">cloudxr-wss-proxy {{.S.Version}}</p>
</main></body>
</html>
`))
