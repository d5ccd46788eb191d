package portal

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"text/template"
)

// Profile returns an Apple configuration profile (.mobileconfig) that
// installs ca as a trusted root on iOS, iPadOS, macOS and visionOS. Its
// identifiers derive from the certificate, so installing it twice replaces
// rather than duplicates it.
func Profile(ca *x509.Certificate) []byte {
	sum := sha256.Sum256(ca.Raw)
	var b bytes.Buffer
	profileTemplate.Execute(&b, map[string]string{
		"Name":        ca.Subject.CommonName,
		"Cert":        base64.StdEncoding.EncodeToString(ca.Raw),
		"ID":          fmt.Sprintf("%x", sum[:8]),
		"PayloadUUID": uuidFrom(sum[:16], 1),
		"ProfileUUID": uuidFrom(sum[16:], 2),
	})
	return b.Bytes()
}

// uuidFrom formats 16 bytes as a version 4 style UUID string; salt keeps the
// two UUIDs of one profile apart.
func uuidFrom(b []byte, salt byte) string {
	u := append([]byte(nil), b...)
	u[0] ^= salt
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

var profileTemplate = template.Must(template.New("profile").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadCertificateFileName</key>
			<string>cloudxr-wss-proxy-ca.cer</string>
			<key>PayloadContent</key>
			<data>{{.Cert}}</data>
			<key>PayloadDescription</key>
			<string>Trusts the certificate authority of the CloudXR proxy on your network.</string>
			<key>PayloadDisplayName</key>
			<string>{{x .Name}}</string>
			<key>PayloadIdentifier</key>
			<string>io.cloudxr-wss-proxy.ca.{{.ID}}.root</string>
			<key>PayloadType</key>
			<string>com.apple.security.root</string>
			<key>PayloadUUID</key>
			<string>{{.PayloadUUID}}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
		</dict>
	</array>
	<key>PayloadDescription</key>
	<string>Lets this device open wss:// connections to the CloudXR proxy without certificate warnings.</string>
	<key>PayloadDisplayName</key>
	<string>{{x .Name}}</string>
	<key>PayloadIdentifier</key>
	<string>io.cloudxr-wss-proxy.ca.{{.ID}}</string>
	<key>PayloadRemovalDisallowed</key>
	<false/>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{{.ProfileUUID}}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
`))
