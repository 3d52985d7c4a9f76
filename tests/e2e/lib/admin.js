// The admin listener from a test: its port (from gcs's log), a request, and
// the sum of a /metrics family's samples.
const http = require('node:http');
const h = require('./harness');

async function adminPort(gcs) {
  for (let i = 0; i < 200; i++) {
    const m = /admin listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(gcs.stderrText);
    if (m) return Number(m[1]);
    await h.sleep(25);
  }
  throw new Error('no admin line:\n' + gcs.stderrText);
}

function get(port, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The sum of a family's samples whose labels match 'labels' (a substring).
function sum(text, name, labels = '') {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (m && m[1].includes(labels)) total += Number(m[2]);
  }
  return total;
}

module.exports = { adminPort, get, sum };
