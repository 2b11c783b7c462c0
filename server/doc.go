// Package server composes roomcast: the listener and its routes
// (/socket.io/, the /api/v1/ HTTP API, /healthz, /readyz, /metrics, and
// pprof when asked; /metrics and pprof may have listeners of their own),
// CORS, the built-in hub protocol, JWT authentication, metrics, the
// connection rate limit, the Redis backplane setup and graceful shutdown.
// The Engine.IO transports are package clients; the Socket.IO layer is
// package namespaces.
//
// Entry points: New(Config) builds a Server; Serve or ListenAndServe runs
// it; Shutdown(ctx) drains it. To, ToUser and Of emit from Go code. The
// Socket.IO types a handler needs (Socket, Event, Namespace, Broadcast,
// Bind, the Err values) are re-exported here: embedding roomcast takes
// this one import. The zero Config follows the reference server: no
// connection state recovery, no hub protocol (HubConfig.Enabled).
package server
