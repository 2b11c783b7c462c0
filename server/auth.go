package server

import (
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/namespaces"
)

// Identity is who a connecting client is.
type Identity struct {
	// UserID feeds ToUser: the socket joins room "user:<UserID>".
	UserID string
	Claims map[string]any
	// Rooms, when not nil, are the room patterns (see RoomsClaim) the
	// socket may join and publish to; nil: no restriction by identity.
	Rooms []string
}

// Authenticator checks a CONNECT's auth payload (and handshake).
type Authenticator interface {
	Authenticate(auth map[string]any, hs namespaces.Handshake) (Identity, error)
}

// AuthenticatorFunc adapts a function to an Authenticator.
type AuthenticatorFunc func(auth map[string]any, hs namespaces.Handshake) (Identity, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(auth map[string]any, hs namespaces.Handshake) (Identity, error) {
	return f(auth, hs)
}

// errUnauthorized is the connect_error message of a refused token.
var errUnauthorized = &namespaces.ConnectError{Message: "unauthorized"}

// authMiddleware runs an Authenticator as connect middleware.
func authMiddleware(a Authenticator) namespaces.ConnectMiddleware {
	return func(s *namespaces.Socket) error {
		id, err := a.Authenticate(s.Handshake().Auth, s.Handshake())
		if err != nil {
			return &namespaces.ConnectError{Message: errUnauthorized.Message, Data: map[string]any{"reason": err.Error()}}
		}
		s.Set("user", id.UserID)
		if id.Rooms != nil {
			s.Set(roomsKey, id.Rooms)
		}
		if id.UserID != "" {
			return s.Join(UserRoom(id.UserID))
		}
		return nil
	}
}

// JWT verifies `auth.token` as an HS256 or RS256 JSON Web Token; the `sub`
// claim is the user id, the optional RoomsClaim limits the rooms.
type JWT struct {
	// Secret verifies HS256 tokens.
	Secret []byte
	// PublicKey verifies RS256 tokens.
	PublicKey *rsa.PublicKey
}

// NewJWT makes a JWT authenticator; at least one key is required.
func NewJWT(secret []byte, pub *rsa.PublicKey) (*JWT, error) {
	if len(secret) == 0 && pub == nil {
		return nil, fmt.Errorf("%w: JWT needs a secret or a public key", ErrBadConfig)
	}
	return &JWT{Secret: secret, PublicKey: pub}, nil
}

func (j *JWT) Authenticate(auth map[string]any, _ namespaces.Handshake) (Identity, error) {
	raw, _ := auth["token"].(string)
	if raw == "" {
		return Identity{}, errors.New("no token")
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			if len(j.Secret) > 0 {
				return j.Secret, nil
			}
		case "RS256":
			if j.PublicKey != nil {
				return j.PublicKey, nil
			}
		}
		return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
	}, jwt.WithValidMethods([]string{"HS256", "RS256"}), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		if err == nil {
			err = errors.New("invalid token")
		}
		return Identity{}, err
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return Identity{}, errors.New("token has no sub claim")
	}
	rooms, err := parseRoomPatterns(claims)
	if err != nil {
		return Identity{}, err
	}
	return Identity{UserID: sub, Claims: claims, Rooms: rooms}, nil
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
