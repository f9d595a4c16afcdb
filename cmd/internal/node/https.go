package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/fanout/fanout/conf"
)

// serveTLS serves h over HTTPS on the block's listen address. Without a
// key and cert it generates a self-signed pair for local use and says so:
// browsers need HTTPS for getUserMedia on any host but localhost.
func (s *Server) serveTLS(name string, hc conf.HTTPS, addr netip.AddrPort, h http.Handler) (netip.AddrPort, error) {
	var (
		cert tls.Certificate
		err  error
	)
	if hc.Key != "" && hc.Cert != "" {
		cert, err = tls.LoadX509KeyPair(hc.Cert, hc.Key)
		if err != nil {
			s.log.Warn(name+": cannot load key/cert, using a self-signed certificate", "err", err)
		}
	}
	if len(cert.Certificate) == 0 {
		if cert, err = selfSigned(); err != nil {
			return netip.AddrPort{}, err
		}
		s.log.Warn(name + ": no key/cert configured; serving a self-signed certificate (browsers will warn)")
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s listen %v: %w", name, addr, err)
	}
	s.serve(name, ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, h)
	return addrOf(ln), nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "fanout"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
