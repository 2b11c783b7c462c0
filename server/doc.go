// Package server is roomcast's HTTP side: the listener and its routes
// (/socket.io/, the /api/v1/ HTTP API, /healthz, /readyz, /metrics, and
// pprof when asked; /metrics and pprof may have listeners of their own),
// the Engine.IO 4
// transports (WebSocket, long-polling, the upgrade between them,
// heartbeats), the built-in hub protocol, JWT authentication, metrics, the
// connection rate limit and graceful shutdown.
//
// Entry points: New(Config) builds a Server; Serve or ListenAndServe runs
// it; Shutdown(ctx) drains it. To, ToUser and Of emit from Go code. The
// Socket.IO types a handler needs (Socket, Event, Namespace, Broadcast,
// Bind, the Err values) are re-exported here: embedding roomcast takes
// this one import. The zero Config follows the reference server: no
// connection state recovery, no hub protocol (HubConfig.Enabled).
//
// Each connection has one reader (the WebSocket read loop, or the polling
// POST handler, serialised) and one writer (the WebSocket write loop, or the
// pending polling GET); everything else only queues packets.
package server
