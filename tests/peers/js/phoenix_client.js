// The official `phoenix` client (unchanged) over the `ws` package, driven by a Rust test.
// Usage: node phoenix_client.js ws://127.0.0.1:PORT/socket
// Prints one JSON object per line for every event; exits on "quit" from stdin.
const { Socket, Presence } = require("phoenix");
const WebSocket = require("ws");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const url = process.argv[2];
const socket = new Socket(url, {
  transport: WebSocket,
  params: { token: "peer" },
  heartbeatIntervalMs: 300,
  reconnectAfterMs: () => 100,
  rejoinAfterMs: () => 100,
});
socket.onOpen(() => out({ ev: "open" }));
socket.onClose((e) => out({ ev: "close", code: e && e.code }));
socket.onError(() => out({ ev: "socket_error" }));
socket.connect();

const channel = socket.channel("room:lobby", { user: "node" });
const presence = new Presence(channel);
presence.onSync(() => out({ ev: "presence", users: presence.list((id) => id).sort() }));
channel.on("said", (p) => out({ ev: "said", payload: p }));
channel.onError(() => out({ ev: "channel_error" }));
let pushed = false;
channel
  .join()
  .receive("ok", (r) => {
    out({ ev: "joined", response: r });
    if (!pushed) {
      pushed = true;
      channel
        .push("ack", { id: 1 })
        .receive("ok", (r) => out({ ev: "reply", response: r }))
        .receive("error", (e) => out({ ev: "reply_error", response: e }))
        .receive("timeout", () => out({ ev: "reply_timeout" }));
      channel
        .push("launch", {})
        .receive("ok", (r) => out({ ev: "reply", response: r }))
        .receive("error", (e) => out({ ev: "reply_error", response: e }));
    }
  })
  .receive("error", (e) => out({ ev: "join_error", topic: "room:lobby", response: e }));

socket
  .channel("nope", {})
  .join()
  .receive("ok", () => out({ ev: "joined_nope" }))
  .receive("error", (e) => out({ ev: "join_error", topic: "nope", response: e }));

process.stdin.on("data", (d) => {
  if (d.toString().includes("quit")) {
    socket.disconnect(() => process.exit(0));
    setTimeout(() => process.exit(0), 500);
  }
});
setTimeout(() => {
  out({ ev: "gave_up" });
  process.exit(2);
}, 60000);
