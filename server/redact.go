package server

import (
	"net/url"
	"strings"
)

// Redacted replaces secret values in the handshakes GET /api/v1/sockets
// returns.
const Redacted = "[redacted]"

// secretKeyParts mark a credential-looking key of handshake auth, headers
// or query when a key contains one of them (case-insensitive): auth.token,
// Authorization, Cookie, X-Api-Key, password, client_secret, sessionId...
var secretKeyParts = []string{"token", "secret", "passw", "auth", "cookie", "key", "credential", "session", "signature", "jwt", "bearer"}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// redactHandshake returns a copy of a fetchSockets handshake with the
// values of secret keys in auth (at any depth), headers, query and the
// query of url replaced by Redacted. Sockets of other nodes (Node ones too) are redacted the
// same way, since this runs on the answer.
func redactHandshake(hs map[string]any) map[string]any {
	if hs == nil {
		return nil
	}
	out := make(map[string]any, len(hs))
	for k, v := range hs {
		switch k {
		case "auth", "headers", "query":
			out[k] = redactValue(v)
		case "url":
			out[k] = redactURL(v)
		default:
			out[k] = v
		}
	}
	return out
}

func redactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if secretKey(k) {
				out[k] = Redacted
			} else {
				out[k] = redactValue(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = redactValue(e)
		}
		return out
	}
	return v
}

// redactURL redacts the secret query parameters of a request URI.
func redactURL(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	path, rawQuery, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return path + "?" + Redacted
	}
	changed := false
	for k := range q {
		if secretKey(k) {
			q[k] = []string{Redacted}
			changed = true
		}
	}
	if !changed {
		return s
	}
	return path + "?" + q.Encode()
}
