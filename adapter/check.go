package adapter

// CheckMsgpack tells whether b holds exactly one msgpack value within the
// limits the adapters decode backplane messages with (16 MiB, nesting
// 10,000, 1,048,576 values), without decoding or allocating anything. The
// socket layer checks the packets of msgpack clients with it before
// decoding them. Errors wrap ErrUndecodable.
func CheckMsgpack(b []byte) error { return checkMsgpack(b) }
