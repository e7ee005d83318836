package wholewrite_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/wholewrite"
)

// countingListener counts the write calls made on the TCP connections it
// accepts: the system calls a response costs.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	writes int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

func (l *countingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes++
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// The handler of /whole declares its response whole; /plain does not;
// /stream flushes part of its response and waits for the client to confirm
// it arrived before it writes the rest.
func handler(body []byte, arrived chan struct{}) http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, r *http.Request, whole bool) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if whole {
			wholewrite.Whole(r)
		}
		_, _ = w.Write(body)
	}
	mux.HandleFunc("/whole", func(w http.ResponseWriter, r *http.Request) { write(w, r, true) })
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { write(w, r, false) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("first part\n"))
		w.(http.Flusher).Flush()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			return // the client gives up first and fails the test
		}
		_, _ = w.Write([]byte("second part\n"))
	})
	return mux
}

func serve(t *testing.T, h http.Handler, tlsConfig *tls.Config) (*countingListener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	var l net.Listener = wholewrite.Listener(cl)
	scheme := "http"
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
		scheme = "https"
	}
	hs := &http.Server{Handler: h, ConnContext: wholewrite.ConnContext, IdleTimeout: time.Minute}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return cl, scheme + "://" + ln.Addr().String()
}

// rawExchange sends one keep-alive request on conn and reads its response.
func rawExchange(t *testing.T, conn net.Conn, br *bufio.Reader, path string) []byte {
	t.Helper()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", path); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v (a held response that was never sent?)", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAWholeResponseLeavesInOneWrite(t *testing.T) {
	body := bytes.Repeat([]byte("<saml2:Attribute/>"), 400) // 7,200 bytes: two 4 KiB buffers
	cl, base := serve(t, handler(body, nil), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range []struct {
		path   string
		writes int
	}{
		{"/whole", 1},
		{"/plain", 2}, // net/http as it is: the point of the package
		{"/whole", 1}, // again on the same connection: the hold ended with the response
		{"/plain", 2},
	} {
		before := cl.count()
		got := rawExchange(t, conn, br, tc.path)
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: body of %d bytes, want the %d sent", tc.path, len(got), len(body))
		}
		// The writes all happened before the client could read the end.
		if n := cl.count() - before; n != tc.writes {
			t.Errorf("%s: %d writes for the response, want %d", tc.path, n, tc.writes)
		}
	}
}

func TestAWholeResponseOverTLSLeavesInOneWrite(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 9000)
	cl, base := serve(t, handler(body, nil), &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	rawExchange(t, conn, br, "/plain") // the server's session tickets go out first
	for _, tc := range []struct {
		path   string
		writes int
	}{{"/whole", 1}, {"/plain", 2}} {
		before := cl.count()
		if got := rawExchange(t, conn, br, tc.path); !bytes.Equal(got, body) {
			t.Fatalf("%s: body of %d bytes, want %d", tc.path, len(got), len(body))
		}
		if n := cl.count() - before; n != tc.writes {
			t.Errorf("%s over TLS: %d writes, want %d", tc.path, n, tc.writes)
		}
	}
}

// A response not declared whole is never held: a streamed part reaches the
// client while the handler is still running.
func TestAStreamedResponseIsNotHeld(t *testing.T) {
	arrived := make(chan struct{})
	_, base := serve(t, handler(nil, arrived), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A whole response first, so that the connection has held before.
	br := bufio.NewReader(conn)
	rawExchange(t, conn, br, "/whole")
	if _, err := fmt.Fprint(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first part\n" {
		t.Fatalf("first part: %q, %v", line, err)
	}
	close(arrived)
}

// A read, as net/http's background read during the handler, does not
// release a response half written.
func TestAReadDoesNotEndTheHold(t *testing.T) {
	c, _, cl := pair(t)
	hold(t, c)
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read something the peer never sent")
	}
	if n := cl.count(); n != 0 {
		t.Fatalf("%d writes after a read, want 0", n)
	}
}

// The rules of release, on a connection whose peer we read directly.
func TestHeldBytesGoOutBeforeTheConnectionReadsOrCloses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release func(c *wholewrite.Conn) error
	}{
		{"read deadline", func(c *wholewrite.Conn) error { return c.SetReadDeadline(time.Now().Add(time.Minute)) }},
		{"deadline", func(c *wholewrite.Conn) error { return c.SetDeadline(time.Now().Add(time.Minute)) }},
		{"write deadline", func(c *wholewrite.Conn) error { return c.SetWriteDeadline(time.Time{}) }},
		{"close write", func(c *wholewrite.Conn) error { return c.CloseWrite() }},
		{"close", func(c *wholewrite.Conn) error { return c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, cl := pair(t)
			hold(t, c)
			for _, s := range []string{"HTTP/1.1 200 OK\r\n", "\r\n", "body"} {
				if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if n := cl.count(); n != 0 {
				t.Fatalf("%d writes while holding, want 0", n)
			}
			if err := tc.release(c); err != nil {
				t.Fatal(err)
			}
			if n := cl.count(); n != 1 {
				t.Errorf("%d writes on release, want 1", n)
			}
			_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			got := make([]byte, len("HTTP/1.1 200 OK\r\n\r\nbody"))
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != "HTTP/1.1 200 OK\r\n\r\nbody" {
				t.Fatalf("peer read %q, %v", got, err)
			}
			// Holding ended: the next write goes straight out.
			if tc.name != "close" && tc.name != "close write" {
				if _, err := c.Write([]byte("more")); err != nil {
					t.Fatal(err)
				}
				if n := cl.count(); n != 2 {
					t.Errorf("%d writes after the hold, want 2", n)
				}
			}
		})
	}
}

func TestHoldingIsBounded(t *testing.T) {
	c, peer, cl := pair(t)
	hold(t, c)
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	chunk := make([]byte, 100<<10)
	for range 3 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// 200 KiB held, then 300 KiB would pass the bound: out together.
	if n := cl.count(); n == 0 {
		t.Fatal("300 KiB held without a write")
	}
}

func TestAWriteErrorOnReleaseIsReported(t *testing.T) {
	c, peer, _ := pair(t)
	hold(t, c)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	_ = c.Conn.Close() // the connection under the wrapper is gone
	_ = peer.Close()
	if err := c.SetReadDeadline(time.Now()); err == nil {
		t.Fatal("release on a closed connection: no error")
	}
	if _, err := c.Write([]byte("after")); err == nil {
		t.Fatal("write after a failed release: no error")
	}
}

// pair returns a wrapped server side and the raw client side of a TCP
// connection, and the server side's write counter.
func pair(t *testing.T) (*wholewrite.Conn, net.Conn, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl := &countingListener{Listener: ln}
	l := wholewrite.Listener(cl)
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	return sc.(*wholewrite.Conn), peer, cl
}

// hold declares a whole response on c the way a handler does: through a
// request whose context came from ConnContext.
func hold(t *testing.T, c *wholewrite.Conn) {
	t.Helper()
	r, err := http.NewRequestWithContext(wholewrite.ConnContext(t.Context(), c), "POST", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	wholewrite.Whole(r)
}

// HTTP/2 reads on a goroutine of its own and interleaves streams: a
// request of it never makes the connection hold.
func TestHTTP2IsNeverHeld(t *testing.T) {
	c, _, cl := pair(t)
	r, err := http.NewRequestWithContext(wholewrite.ConnContext(t.Context(), c), "POST", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.ProtoMajor, r.ProtoMinor = 2, 0
	wholewrite.Whole(r)
	if _, err := c.Write([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	if n := cl.count(); n != 1 {
		t.Fatalf("%d writes, want 1: an HTTP/2 request made the connection hold", n)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Close from another goroutine (http.Server.Close) cuts off a write blocked
// on a peer that does not read, as on a bare connection: it does not wait
// for the write to finish.
func TestCloseDoesNotWaitForABlockedWrite(t *testing.T) {
	c, _, _ := pair(t) // the peer never reads
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 64<<20)) // far past the socket buffers
		wrote <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the write fill the buffers and block
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		_ = c.Conn.Close() // unblock the write, so the test ends
		t.Fatal("Close waited for a blocked write")
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("a write cut off by Close reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write did not end with Close")
	}
}
