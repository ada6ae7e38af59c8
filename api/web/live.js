// Live job events over the WebSocket. The token never goes in the URL: each connection
// uses a single-use ticket. A dropped socket reconnects with a new one.

import { call } from './api.js';

/**
 * Calls `onEvent(event)` for each event of the player's jobs until `stop()`, and
 * `onOpen()` each time the socket (re)opens: events sent while it was down are not
 * replayed, so a view reads its state again then.
 */
export function follow(onEvent, onOpen = () => {}) {
  let socket = null;
  let stopped = false;
  let delay = 500;
  const retry = () => {
    delay = Math.min(delay * 2, 15000);
    setTimeout(connect, delay);
  };
  async function connect() {
    if (stopped) return;
    try {
      const { ticket } = await call('POST', '/api/v2/ws/ticket');
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
      socket.onopen = () => { delay = 500; onOpen(); };
      socket.onmessage = (message) => onEvent(JSON.parse(message.data));
      socket.onclose = () => { if (!stopped) retry(); };
    } catch {
      retry();
    }
  }
  connect();
  return {
    stop() {
      stopped = true;
      if (socket) socket.close();
    },
  };
}
