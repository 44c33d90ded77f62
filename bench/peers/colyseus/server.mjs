// The Colyseus peer of Croupier's load test (docs/bench.md, "The Colyseus peer").
//
// Two room types, both without synchronised state (no schema patches: messages only):
//   "casino" - every session that is not in the lobby (Croupier: the zone);
//   "lobby"  - sessions that chat (Croupier: the Lobby room of the demo zone).
// Both answer the same requests, sent as Colyseus ROOM_REQUEST frames:
//   "spin"   - Croupier's fruit_slot, read from games/catalog/fruit_slot.json: 3 reel
//              stops drawn with the CSPRNG, the payline evaluated left to right with the
//              paytable, the bet and the win applied to an in-memory balance, a round id;
//   "chat"   - `public_message` to every member, the sender included, and an OK reply.
// A join sends `user_entered` to the others and the member list to the joiner (as
// Croupier's join_room does); PING (18) is echoed by Colyseus itself.
//
//   node server.mjs [--port 2567] [--host 127.0.0.1]
// Environment: PEER_PING_INTERVAL_MS (WebSocket ping, default 20000: the scenario's
// heartbeat period; 0 = off), PEER_STARTING_BALANCE (default 100000), PEER_GAME (path of
// the slot file).
import { randomInt, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Room, Server } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";

const here = dirname(fileURLToPath(import.meta.url));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const PORT = Number(arg("--port", "2567"));
const HOST = arg("--host", "127.0.0.1");
const PING_MS = Number(process.env.PEER_PING_INTERVAL_MS ?? "20000");
const START = Number(process.env.PEER_STARTING_BALANCE ?? "100000");
const GAME_FILE = process.env.PEER_GAME ?? resolve(here, "../../../games/catalog/fruit_slot.json");

// -- the slot: one reel set, paylines, a paytable (the fruit_slot shape) ----------------

function loadSlot(path) {
  const cfg = JSON.parse(readFileSync(path, "utf8"));
  const profile = Object.values(cfg.rtp_profiles)[0];
  const reels = cfg.reel_sets[profile.reel_set].reels;
  const pays = {};
  for (const [symbol, table] of Object.entries(cfg.paytable)) {
    pays[symbol] = Object.fromEntries(Object.entries(table).map(([n, v]) => [Number(n), v]));
  }
  return {
    id: cfg.id,
    reels,
    rows: cfg.grid.rows,
    paylines: cfg.evaluation.lines.paylines,
    pays,
    coins: cfg.bets.coin_values,
  };
}

const SLOT = loadSlot(GAME_FILE);

function spin(wallet, msg) {
  const coin = msg?.coin ?? Math.min(...SLOT.coins);
  if (!SLOT.coins.includes(coin)) {
    return { error: "bad_bet", message: `coin value ${coin} is not offered` };
  }
  const lines = SLOT.paylines.length;
  const stake = coin * lines;
  if (wallet.balance < stake) {
    return { error: "insufficient_funds", message: "balance too low" };
  }
  // one CSPRNG draw per reel (Croupier draws one number over the whole cycle)
  const stops = SLOT.reels.map((strip) => randomInt(strip.length));
  let win = 0;
  for (const line of SLOT.paylines) {
    const symbols = line.map((row, reel) => SLOT.reels[reel][(stops[reel] + row) % SLOT.reels[reel].length]);
    let run = 1;
    while (run < symbols.length && symbols[run] === symbols[0]) run++;
    const pay = SLOT.pays[symbols[0]]?.[run] ?? 0; // e.g. Cherry pays for a run of 1, 2 or 3
    win += pay * coin;
  }
  wallet.balance += win - stake;
  return {
    round: randomUUID().replaceAll("-", ""),
    game: SLOT.id,
    coin,
    lines,
    stake,
    win,
    net: win - stake,
    stops,
    balance: wallet.balance,
  };
}

// -- rooms --------------------------------------------------------------------------------

class CasinoRoom extends Room {
  maxClients = 20000;
  autoDispose = false;

  onCreate() {
    this.nextUser = 1;
    this.onMessage("spin", (client, msg, ctx) => {
      const out = spin(client.userData, msg);
      if (out.error) return ctx.reject(out);
      return out;
    });
    this.onMessage("chat", (client, msg) => {
      const text = typeof msg?.text === "string" ? msg.text.slice(0, 500) : "";
      this.broadcast("public_message", { room: this.roomId, from: client.userData.id, text, data: null });
      return { room: this.roomId };
    });
  }

  onJoin(client, options) {
    const user = { id: this.nextUser++, name: String(options?.name ?? client.sessionId) };
    client.userData = { id: user.id, name: user.name, balance: START };
    if (this.announce) {
      this.broadcast("user_entered", { room: this.roomId, user }, { except: client });
      client.send("room_joined", {
        room: this.roomId,
        users: this.clients.map((c) => ({ id: c.userData?.id, name: c.userData?.name })),
      });
    }
  }
}

class LobbyRoom extends CasinoRoom {
  announce = true;
}

const server = new Server({
  transport: new WebSocketTransport({ pingInterval: PING_MS, pingMaxRetries: 2 }),
  greet: false,
});
server.define("casino", CasinoRoom);
server.define("lobby", LobbyRoom);
await server.listen(PORT, HOST);
console.log(`colyseus peer listening on ws://${HOST}:${PORT}`);
// SIGTERM / SIGINT: @colyseus/core shuts down gracefully by itself (rooms disposed, exit)
