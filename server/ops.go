package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Operational endpoints: /metrics and Go's profiles (/debug/pprof/). By
// default /metrics is on the main listener; Config.MetricsAddr moves it
// (and pprof when on) to a listener of its own, Config.PprofAddr gives
// pprof its own. pprof never leaves loopback unless its address is given
// explicitly with PprofAddr.

// loopback reports whether a listen address ("host:port") only accepts
// connections from this machine: localhost or a loopback IP. An empty host
// or 0.0.0.0 / [::] listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// exposureError refuses an open admin surface on a non-loopback main
// listener: the HTTP API without a key, or pprof.
func (c Config) exposureError(addr string) error {
	if loopback(addr) {
		return nil
	}
	if c.APIKey == "" && !c.APIInsecure {
		return fmt.Errorf("%w: the HTTP API (/api/v1) would be open to anyone on %s: set an API key (--api-key or ROOMCAST_API_KEY; Config.APIKey), listen on a loopback address (--addr 127.0.0.1:PORT), or serve it without a key with --api-insecure (Config.APIInsecure)", ErrBadConfig, addr)
	}
	if c.Pprof && c.PprofAddr == "" && c.MetricsAddr == "" {
		return fmt.Errorf("%w: pprof would be served on %s, which is not a loopback address: give its address explicitly with --pprof-addr (Config.PprofAddr), e.g. 127.0.0.1:6060", ErrBadConfig, addr)
	}
	return nil
}

// checkOps validates the operational listeners of a config.
func (c Config) checkOps() error {
	if c.Pprof && c.PprofAddr == "" && c.MetricsAddr != "" && !loopback(c.MetricsAddr) {
		return fmt.Errorf("%w: pprof would be served with /metrics on %s, which is not a loopback address: give its address explicitly with --pprof-addr (Config.PprofAddr), e.g. 127.0.0.1:6060", ErrBadConfig, c.MetricsAddr)
	}
	return c.exposureError(c.Addr)
}

func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// opsListener is a listener of its own for operational endpoints.
type opsListener struct {
	name string // "metrics" or "pprof"
	addr string
	mux  *http.ServeMux
	ln   net.Listener
	http *http.Server
}

// ops holds the server's own operational listeners (none by default).
type ops struct {
	list []*opsListener
	wg   sync.WaitGroup
}

// routeOps puts /metrics and pprof on the main mux or on their own
// listeners, as configured.
func (srv *Server) routeOps() {
	metrics := promhttp.HandlerFor(srv.reg, promhttp.HandlerOpts{})
	cfg := srv.cfg
	opsMux := srv.mux
	if cfg.MetricsAddr != "" {
		opsMux = http.NewServeMux()
		srv.ops.list = append(srv.ops.list, &opsListener{name: "metrics", addr: cfg.MetricsAddr, mux: opsMux})
	}
	opsMux.Handle("GET /metrics", metrics)
	switch {
	case cfg.PprofAddr != "":
		mux := http.NewServeMux()
		handlePprof(mux)
		srv.ops.list = append(srv.ops.list, &opsListener{name: "pprof", addr: cfg.PprofAddr, mux: mux})
	case cfg.Pprof:
		handlePprof(opsMux)
	}
}

// listenOps opens the operational listeners and serves them; on error it
// closes the ones it opened.
func (srv *Server) listenOps() error {
	for i, o := range srv.ops.list {
		ln, err := net.Listen("tcp", o.addr)
		if err != nil {
			for _, prev := range srv.ops.list[:i] {
				prev.ln.Close()
			}
			return fmt.Errorf("%s listener: %w", o.name, err)
		}
		o.ln = ln
	}
	for _, o := range srv.ops.list {
		o.http = &http.Server{Handler: o.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(srv.log.Named("http"))}
		srv.log.Info(o.name+" listening", zap.String("addr", o.ln.Addr().String()))
		srv.ops.wg.Add(1)
		go func(o *opsListener) {
			defer srv.ops.wg.Done()
			if err := o.http.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				srv.log.Error(o.name+" listener failed", zap.Error(err))
			}
		}(o)
	}
	return nil
}

// closeOps stops the operational listeners.
func (srv *Server) closeOps() {
	for _, o := range srv.ops.list {
		if o.http != nil {
			o.http.Close()
		}
	}
	srv.ops.wg.Wait()
}

// opsAddr is the bound address of an operational listener of its own
// (nil when that endpoint is on the main listener or off). It blocks until
// the server serves.
func (srv *Server) opsAddr(name string) net.Addr {
	<-srv.ready
	for _, o := range srv.ops.list {
		if o.name == name && o.ln != nil {
			return o.ln.Addr()
		}
	}
	return nil
}

// MetricsAddr is the bound address of the /metrics listener when
// Config.MetricsAddr is set (nil otherwise); it blocks until serving.
func (srv *Server) MetricsAddr() net.Addr { return srv.opsAddr("metrics") }

// PprofAddr is the bound address of the pprof listener when
// Config.PprofAddr is set (nil otherwise); it blocks until serving.
func (srv *Server) PprofAddr() net.Addr { return srv.opsAddr("pprof") }
