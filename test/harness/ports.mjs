// Free TCP ports on 127.0.0.1 in 20000–32000: below the kernel's ephemeral range (32768+), so
// client-side ports of thousands of connections never collide with a server we restart.
import net from 'node:net';

const handedOut = new Set();

function tryListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function pickPort({ min = 20000, max = 32000 } = {}) {
  for (let i = 0; i < 200; i++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (handedOut.has(port)) continue;
    if (await tryListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${min}-${max} after 200 tries`);
}
