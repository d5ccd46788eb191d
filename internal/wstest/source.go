package wstest

import "net"

// Source is the i-th client address of a load in 127.block.0.0/16 (all of
// 127.0.0.0/8 is loopback), 254 to a /24, up to 65,024: each test client
// or simulated headset from an address of its own, as real ones are, so
// that the proxy's per-client limits can stay at their defaults.
func Source(block byte, i int) net.IP {
	return net.IPv4(127, block, byte(i/254), byte(1+i%254))
}
