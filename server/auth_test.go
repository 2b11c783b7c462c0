package server

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/namespaces"
)

func TestJWT(t *testing.T) {
	secret := []byte("s3cret")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	j, err := NewJWT(secret, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	hs := func(claims jwt.MapClaims) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		return s
	}
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u2", "exp": exp}).SignedString(key)
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "exp": exp}).SignedString([]byte("other"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1", "exp": exp}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tests := []struct {
		name  string
		auth  map[string]any
		user  string
		valid bool
	}{
		{"HS256", map[string]any{"token": hs(jwt.MapClaims{"sub": "u1", "exp": exp})}, "u1", true},
		{"RS256", map[string]any{"token": rs}, "u2", true},
		{"no token", map[string]any{}, "", false},
		{"not a string", map[string]any{"token": 42}, "", false},
		{"wrong secret", map[string]any{"token": other}, "", false},
		{"alg none", map[string]any{"token": none}, "", false},
		{"expired", map[string]any{"token": hs(jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Minute).Unix()})}, "", false},
		{"no expiry", map[string]any{"token": hs(jwt.MapClaims{"sub": "u1"})}, "", false},
		{"no sub", map[string]any{"token": hs(jwt.MapClaims{"exp": exp})}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := j.Authenticate(tt.auth, namespacesHandshake())
			if (err == nil) != tt.valid || id.UserID != tt.user {
				t.Fatalf("identity %+v, err %v", id, err)
			}
		})
	}
	if _, err := NewJWT(nil, nil); err == nil {
		t.Fatal("a JWT verifier without keys was accepted")
	}
}

func namespacesHandshake() namespaces.Handshake { return namespaces.Handshake{} }
