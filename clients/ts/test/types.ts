// Compile-time checks of the generated request types (`npm run typecheck`): the lines
// marked as expected errors must be errors, and the others must not.
import { CroupierClient } from "../src/index.js";

declare const c: CroupierClient;

export async function checks(): Promise<void> {
  await c.request("spin", { game: "fruit_slot", coin: 1, key: "k-1" });
  await c.request("join_room", { room: "Lobby", spectator: false });
  await c.request("find_rooms", { where: [{ var: "stake", op: ">=", value: 10 }], limit: 5 });
  await c.request("balance");
  // @ts-expect-error a spin without its fields
  await c.request("spin");
  // @ts-expect-error no such request
  await c.request("spinn", {});
  // @ts-expect-error a spin needs its game
  await c.request("spin", { coin: 1 });
  // @ts-expect-error `coin` is a number
  await c.request("spin", { game: "fruit_slot", coin: "1" });
  // @ts-expect-error no such operator
  await c.request("find_rooms", { where: [{ var: "stake", op: "~", value: 10 }] });
  // @ts-expect-error no such field
  await c.request("leave_room", { room: 1, now: true });
}
