// The TypeScript client (dist/, built by `npm run build`) against a real Croupier server.
// Spawned by tests/integration/test_ts_client.py with: node test/scenario.mjs <ws url>
// Prints one "STEP <name>" line per completed step and "OK" at the end; any failure prints
// "FAIL <reason>" and exits 1.

import WebSocket from "ws";
import { CroupierClient, CroupierError } from "../dist/index.js";

const url = process.argv[2];
const step = (name) => console.log("STEP " + name);
const check = (cond, what) => {
  if (!cond) throw new Error("check failed: " + what);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function until(client, state, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting for state " + state)), timeoutMs);
    const off = client.onState((s, info) => {
      if (s === state) {
        clearTimeout(timer);
        off();
        resolve(info);
      }
    });
  });
}

async function main() {
  const opts = { WebSocket, requestTimeoutMs: 8000 };
  const ann = new CroupierClient(url, opts);
  const bob = new CroupierClient(url, opts);
  const me = await ann.login({ guest: true, zone: "demo", name: "ann" });
  check(me.user.name === "ann" && ann.resumeToken, "ann is logged in with a resume token");
  await bob.login({ guest: true, zone: "demo", name: "bob" });
  const heard = [];
  ann.on("public_message", (data, seq) => heard.push([data.text, seq]));
  const lobby = (await ann.request("join_room", { room: "Lobby" })).room.id;
  await bob.request("join_room", { room: "Lobby" });
  step("login");

  try {
    await ann.request("join_room", { room: "Nowhere" });
    check(false, "an error reply rejects");
  } catch (err) {
    check(err instanceof CroupierError && err.code === 200 && err.errorName === "room_not_found", "error 200");
  }
  step("errors");

  // Heartbeats: the server's idle timeout is 2 s here, the heartbeat 0.5 s.
  await sleep(3000);
  check(ann.state === "connected", "still connected after the idle timeout: the heartbeat kept it");
  step("heartbeat");

  // A drop (no close frame): bob talks meanwhile; ann resumes and gets it, in order, once.
  const before = ann.lastSeq;
  const spinning = ann.request("spin", { game: "fruit_slot", coin: 1, key: "ts-1" }); // in flight
  const resumed = until(ann, "resumed");
  ann.ws.terminate();
  await bob.request("public_message", { room: lobby, text: "while you were away" });
  await resumed;
  const spin = await spinning;
  check(typeof spin.round === "string" && typeof spin.balance === "number", "the spin in flight was answered");
  for (let i = 0; i < 50 && !heard.some(([t]) => t === "while you were away"); i++) await sleep(50);
  const missed = heard.filter(([t]) => t === "while you were away");
  check(missed.length === 1 && missed[0][1] > before, "the missed message arrived once: " + JSON.stringify(heard));
  const again = await ann.request("spin", { game: "fruit_slot", coin: 1, key: "ts-1" });
  check(again.round === spin.round, "the same key is the same round (applied once)");
  const balance = await ann.request("balance");
  check(balance.balance === spin.balance, "the balance moved once: " + balance.balance + " vs " + spin.balance);
  step("resume");

  // A close ends the session: the client says so, and a request after it is refused.
  const closed = until(bob, "closed");
  bob.close();
  await closed;
  try {
    await bob.request("ping");
    check(false, "no request after a close");
  } catch (err) {
    check(err instanceof CroupierError, "a request after the close rejects");
  }
  step("close");

  ann.close();
  console.log("OK");
  process.exit(0);
}

main().catch((err) => {
  console.log("FAIL " + (err && err.message ? err.message : String(err)));
  process.exit(1);
});
