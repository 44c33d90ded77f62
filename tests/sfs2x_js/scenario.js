// Drives the official SmartFoxServer 2X JavaScript client (npm `sfs2x-api`) against a
// Croupier server. Spawned by tests/integration/test_sfs2x_client.py with:
//   node scenario.js <host> <port>
// and the environment: MOD_TOKEN (a moderator login token for zone "demo") and
// USER_TOKEN (a registered user's token, for the ban).
// Prints one "STEP <name>" line per completed step and "OK" at the end; any failure
// prints "FAIL <reason>" and exits 1. The Python test reacts to "STEP joined" by
// sending a message from a native client in the same room.

"use strict";

// The client expects a browser-style global WebSocket; Node has none.
globalThis.WebSocket = require("ws");
const SFS2X = require("sfs2x-api");

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
const E = SFS2X.SFSEvent;
const TIMEOUT = 5000;

function step(name) {
  console.log("STEP " + name);
}

function fail(reason) {
  console.log("FAIL " + reason);
  process.exit(1);
}

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

// The next `event` on `sfs` for which `pred` is true.
function waitFor(sfs, event, pred = () => true, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sfs.removeEventListener(event, handler);
      reject(new Error("timed out waiting for " + what));
    }, TIMEOUT);
    function handler(e) {
      let ok = false;
      try {
        ok = pred(e);
      } catch (err) {
        ok = false;
      }
      if (ok) {
        clearTimeout(timer);
        sfs.removeEventListener(event, handler);
        resolve(e);
      }
    }
    sfs.addEventListener(event, handler);
  });
}

async function connect() {
  const sfs = new SFS2X.SmartFox({ host, port, useSSL: false, debug: false });
  sfs.logger.level = SFS2X.LogLevel.ERROR;
  const connected = waitFor(sfs, E.CONNECTION, () => true, "connection");
  sfs.connect();
  const e = await connected;
  check(e.success, "connection succeeded");
  return sfs;
}

async function login(sfs, user, password, zone, params) {
  const done = Promise.race([
    waitFor(sfs, E.LOGIN, () => true, "login").then((e) => ({ ok: true, e })),
    waitFor(sfs, E.LOGIN_ERROR, () => true, "login").then((e) => ({ ok: false, e })),
  ]);
  sfs.send(new SFS2X.LoginRequest(user, password, params || null, zone));
  return done;
}

async function expectLoginError(user, password, zone, code, params) {
  const sfs = await connect();
  const r = await login(sfs, user, password, zone, params);
  check(!r.ok, `login to ${zone} fails`);
  check(r.e.errorCode === code, `login error code ${r.e.errorCode} is ${code} (${r.e.errorMessage})`);
  sfs.disconnect();
}

async function join(sfs, name) {
  const joined = waitFor(sfs, E.ROOM_JOIN, (e) => e.room.name === name, "join " + name);
  sfs.send(new SFS2X.JoinRoomRequest(name));
  return (await joined).room;
}

async function main() {
  // Errors: unknown zone, guests not allowed, bad token, a password that is not a valid token.
  await expectLoginError("x", "", "NoZone", 1);
  await expectLoginError("x", "", "members", 10);
  const badToken = new SFS2X.SFSObject();
  badToken.putUtfString("token", "not-a-token");
  await expectLoginError("x", "", "demo", 3, badToken);
  await expectLoginError("x", "secret", "demo", 3); // LOGIN_BAD_PASSWORD
  step("login-errors");

  // Guests log in and get the room list with the login.
  const alice = await connect();
  const la = await login(alice, "alice", "", "demo");
  check(la.ok, "alice logs in");
  check(alice.mySelf.name === "alice", "alice's name");
  const rooms = alice.roomManager.getRoomList().map((r) => r.name);
  check(rooms.includes("Lobby"), "room list has Lobby: " + rooms);
  step("login");

  const lobby = await join(alice, "Lobby");
  check(lobby.getUserByName("alice"), "alice is in the Lobby's user list");
  const bob = await connect();
  check((await login(bob, "bob", "", "demo")).ok, "bob logs in");
  const bobEnters = waitFor(alice, E.USER_ENTER_ROOM, (e) => e.user.name === "bob", "bob entering");
  await join(bob, "Lobby");
  await bobEnters;
  check(bob.lastJoinedRoom.getUserByName("native"), "bob sees the native client in the room");
  step("join");

  // Public message round trip: the sender gets its own echo, the others get it too.
  const echo = waitFor(alice, E.PUBLIC_MESSAGE, (e) => e.message === "hello room", "echo");
  const atBob = waitFor(bob, E.PUBLIC_MESSAGE, (e) => e.message === "hello room", "public at bob");
  const fromNative = waitFor(alice, E.PUBLIC_MESSAGE, (e) => e.message === "hello from native", "native msg");
  alice.send(new SFS2X.PublicMessageRequest("hello room"));
  check((await echo).sender.name === "alice", "echo sender");
  check((await atBob).sender.name === "alice", "sender seen by bob");
  step("joined"); // the test's native client now speaks
  const nat = await fromNative;
  check(nat.sender.name === "native", "the native client's message has its sender");
  // A message above the compression threshold (1024 bytes): zlib in both directions.
  const blob = "0123456789".repeat(300);
  const big = new SFS2X.SFSObject();
  big.putUtfString("blob", blob);
  const bigAtAlice = waitFor(alice, E.PUBLIC_MESSAGE, (e) => e.message === "big", "compressed message");
  bob.send(new SFS2X.PublicMessageRequest("big", big));
  check((await bigAtAlice).data.getUtfString("blob") === blob, "compressed payload intact");
  step("public");

  // Private message between the two SFS clients.
  const pm = waitFor(alice, E.PRIVATE_MESSAGE, (e) => e.message === "psst", "private message");
  bob.send(new SFS2X.PrivateMessageRequest("psst", alice.mySelf.id));
  check((await pm).sender.name === "bob", "private sender");
  step("private");

  // Room and user variables seen by the other client.
  const rv = waitFor(bob, E.ROOM_VARIABLES_UPDATE, (e) => e.changedVars.includes("pot"), "room variable");
  alice.send(new SFS2X.SetRoomVariablesRequest([new SFS2X.SFSRoomVariable("pot", 100)]));
  const rve = await rv;
  check(rve.room.getVariable("pot").value === 100, "pot is 100");
  const uv = waitFor(alice, E.USER_VARIABLES_UPDATE, (e) => e.changedVars.includes("level"), "user variable");
  bob.send(new SFS2X.SetUserVariablesRequest([new SFS2X.SFSUserVariable("level", 3)]));
  const uve = await uv;
  check(uve.user.name === "bob" && uve.user.getVariable("level").value === 3, "bob's level is 3");
  step("variables");

  // A moderator logs in with a token in the login params and kicks bob.
  const mod = await connect();
  const tokenParams = new SFS2X.SFSObject();
  tokenParams.putUtfString("token", process.env.MOD_TOKEN);
  const lm = await login(mod, "", "", "demo", tokenParams);
  check(lm.ok, "moderator logs in: " + (lm.ok ? "" : lm.e.errorMessage));
  check(mod.mySelf.isModerator && mod.mySelf.privilegeId === 2, "moderator privilege");
  const modLobby = await join(mod, "Lobby");
  const target = modLobby.getUserByName("bob");
  check(target, "the moderator sees bob");
  const notice = waitFor(bob, E.MODERATOR_MESSAGE, () => true, "kick notice");
  const lost = waitFor(bob, E.CONNECTION_LOST, () => true, "bob's connection lost");
  const bobLeaves = waitFor(alice, E.USER_EXIT_ROOM, (e) => e.user.name === "bob", "bob leaving");
  mod.send(new SFS2X.KickUserRequest(target.id, "Behave!", 0));
  check((await notice).message === "Behave!", "kick notice text");
  const reason = (await lost).reason;
  check(reason === SFS2X.ClientDisconnectionReason.KICK, "disconnection reason is kick: " + reason);
  await bobLeaves;
  step("kick");

  // A registered user (token login) is banned: reason "ban", and the next login fails.
  const userParams = new SFS2X.SFSObject();
  userParams.putUtfString("token", process.env.USER_TOKEN);
  const carol = await connect();
  check((await login(carol, "", "", "demo", userParams)).ok, "carol logs in with a token");
  const carolEnters = waitFor(mod, E.USER_ENTER_ROOM, (e) => e.user.name === "carol", "carol entering");
  await join(carol, "Lobby");
  const carolUser = (await carolEnters).user;
  const banned = waitFor(carol, E.CONNECTION_LOST, () => true, "carol's connection lost");
  mod.send(new SFS2X.BanUserRequest(carolUser.id, "Cheating", SFS2X.BanMode.BY_NAME, 0, 1));
  const banReason = (await banned).reason;
  check(banReason === SFS2X.ClientDisconnectionReason.BAN, "disconnection reason is ban: " + banReason);
  const again = await connect();
  const relog = await login(again, "", "", "demo", userParams);
  check(!relog.ok && relog.e.errorCode === 4, "a banned user's login fails with 4");
  again.disconnect();
  step("ban");

  // Extensions: unknown commands get an error response the app can read.
  const ext = waitFor(alice, E.EXTENSION_RESPONSE, (e) => e.cmd === "lobby.hello", "extension response");
  alice.send(new SFS2X.ExtensionRequest("lobby.hello", new SFS2X.SFSObject()));
  check((await ext).params.getShort("ec") === 28, "extension error code 28");
  // The casino's requests as Zone-extension commands.
  const bal = waitFor(alice, E.EXTENSION_RESPONSE, (e) => e.cmd === "casino.balance", "balance");
  alice.send(new SFS2X.ExtensionRequest("casino.balance", new SFS2X.SFSObject()));
  const balance = (await bal).params.get("balance");
  check(balance === 10000, "welcome balance: " + balance);
  const spinParams = new SFS2X.SFSObject();
  spinParams.putUtfString("game", "fruit_slot");
  const spun = waitFor(alice, E.EXTENSION_RESPONSE, (e) => e.cmd === "casino.spin", "spin");
  alice.send(new SFS2X.ExtensionRequest("casino.spin", spinParams));
  const spin = (await spun).params;
  check(!spin.containsKey("ec"), "spin succeeded: " + spin.getDump());
  check(spin.get("balance") === balance - spin.get("stake") + spin.get("win"), "balance after spin: " + spin.getDump());
  step("extension");

  // A leaderboard: subscribe (the reply is a snapshot), spin, get the delta pushed.
  const boardParams = new SFS2X.SFSObject();
  boardParams.putUtfString("board", "spins");
  const lbSub = waitFor(alice, E.EXTENSION_RESPONSE, (e) => e.cmd === "casino.leaderboard_subscribe", "lb subscribe");
  alice.send(new SFS2X.ExtensionRequest("casino.leaderboard_subscribe", boardParams));
  const snap = (await lbSub).params;
  check(!snap.containsKey("ec") && snap.containsKey("seq"), "leaderboard snapshot: " + snap.getDump());
  const delta = waitFor(alice, E.EXTENSION_RESPONSE, (e) => e.cmd === "leaderboard_delta", "leaderboard delta");
  alice.send(new SFS2X.ExtensionRequest("casino.spin", spinParams));
  const d = (await delta).params;
  check(d.get("seq") === snap.get("seq") + 1, "delta seq follows the snapshot: " + d.getDump());
  check(d.getUtfString("board_id") === "spins", "delta board: " + d.getDump());
  step("leaderboard");

  // Lag monitor: pings answered.
  const ping = waitFor(alice, E.PING_PONG, () => true, "ping pong");
  alice.enableLagMonitor(true, 1, 1);
  check((await ping).lagValue >= 0, "lag value");
  alice.enableLagMonitor(false);
  step("ping");

  // Room groups and room creation.
  const sub = waitFor(alice, E.ROOM_GROUP_SUBSCRIBE, (e) => e.groupId === "slots", "subscribe");
  alice.send(new SFS2X.SubscribeRoomGroupRequest("slots"));
  check((await sub).newRooms.map((r) => r.name).includes("Slot 1"), "the slots group's rooms");
  check(alice.roomManager.getRoomByName("Slot 1"), "Slot 1 is in the room list");
  const subErr = waitFor(alice, E.ROOM_GROUP_SUBSCRIBE_ERROR, () => true, "subscribe error");
  alice.send(new SFS2X.SubscribeRoomGroupRequest("nope"));
  check((await subErr).errorCode === 25, "no such group: 25");
  const unsub = waitFor(alice, E.ROOM_GROUP_UNSUBSCRIBE, (e) => e.groupId === "slots", "unsubscribe");
  alice.send(new SFS2X.UnsubscribeRoomGroupRequest("slots"));
  await unsub;
  const settings = new SFS2X.RoomSettings("Alice's table");
  settings.maxUsers = 4;
  const added = waitFor(alice, E.ROOM_ADD, (e) => e.room.name === "Alice's table", "room add");
  const addedAtMod = waitFor(mod, E.ROOM_ADD, (e) => e.room.name === "Alice's table", "room add at mod");
  const joinedTable = waitFor(alice, E.ROOM_JOIN, (e) => e.room.name === "Alice's table", "join table");
  alice.send(new SFS2X.CreateRoomRequest(settings, true));
  check((await added).room.maxUsers === 4, "max users 4");
  await addedAtMod;
  const table = (await joinedTable).room;
  check(table.getUserByName("alice") && table.userCount === 1, "alice is at her table");
  const dup = waitFor(alice, E.ROOM_CREATION_ERROR, () => true, "creation error");
  alice.send(new SFS2X.CreateRoomRequest(settings, false));
  check((await dup).errorCode === 12, "room name taken: 12");
  const removed = waitFor(mod, E.ROOM_REMOVE, (e) => e.room.name === "Alice's table", "room removed");
  const leftTable = waitFor(alice, E.USER_EXIT_ROOM, (e) => e.user.isItMe && e.room.name === "Alice's table", "leave");
  alice.send(new SFS2X.LeaveRoomRequest(table));
  await leftTable;
  await removed; // an empty user-created room goes away
  step("rooms");

  // Player and spectator switching in a game room (a=17 / a=18).
  const game = new SFS2X.RoomSettings("Alice's game");
  game.isGame = true;
  game.maxUsers = 2;
  game.maxSpectators = 2;
  const joinedGame = waitFor(alice, E.ROOM_JOIN, (e) => e.room.name === "Alice's game", "join game");
  alice.send(new SFS2X.CreateRoomRequest(game, true));
  const gameRoom = (await joinedGame).room;
  check(gameRoom.isGame && alice.mySelf.isPlayerInRoom(gameRoom), "alice plays");
  const toSpectator = waitFor(alice, E.PLAYER_TO_SPECTATOR, (e) => e.user.isItMe, "to spectator");
  alice.send(new SFS2X.PlayerToSpectatorRequest(gameRoom));
  await toSpectator;
  check(alice.mySelf.isSpectatorInRoom(gameRoom), "alice watches");
  const toPlayer = waitFor(alice, E.SPECTATOR_TO_PLAYER, (e) => e.user.isItMe, "to player");
  alice.send(new SFS2X.SpectatorToPlayerRequest(gameRoom));
  check((await toPlayer).playerId >= 1, "a player id");
  check(alice.mySelf.isPlayerInRoom(gameRoom), "alice plays again");
  const leftGame = waitFor(alice, E.USER_EXIT_ROOM, (e) => e.user.isItMe && e.room.name === "Alice's game", "leave game");
  alice.send(new SFS2X.LeaveRoomRequest(gameRoom));
  await leftGame;
  step("spectator");

  // Room search (a=27) and quick join (a=31) with match expressions.
  const high = new SFS2X.RoomSettings("High table");
  high.isGame = true;
  high.maxUsers = 3;
  high.variables = [new SFS2X.SFSRoomVariable("stake", 100), new SFS2X.SFSRoomVariable("dealer", "Ann Lee")];
  const modAtHigh = waitFor(mod, E.ROOM_JOIN, (e) => e.room.name === "High table", "mod at the high table");
  mod.send(new SFS2X.CreateRoomRequest(high, true, null));
  const highRoom = (await modAtHigh).room;
  const M = SFS2X.MatchExpression;
  const rich = new M("stake", SFS2X.NumberMatch.GREATER_THAN_OR_EQUAL_TO, 100)
    .and(SFS2X.RoomProperties.IS_GAME, SFS2X.BoolMatch.EQUALS, true)
    .and(SFS2X.RoomProperties.HAS_FREE_PLAYER_SLOTS, SFS2X.BoolMatch.EQUALS, true);
  const found = waitFor(alice, E.ROOM_FIND_RESULT, () => true, "find rooms");
  alice.send(new SFS2X.FindRoomsRequest(rich, "default"));
  const foundRooms = (await found).rooms;
  check(foundRooms.length === 1 && foundRooms[0].id === highRoom.id, "FindRooms finds the high table");
  check(foundRooms[0].getVariable("stake").value === 100, "with its variables");
  const byDealer = waitFor(alice, E.ROOM_FIND_RESULT, () => true, "find by dealer");
  alice.send(new SFS2X.FindRoomsRequest(new M("dealer", SFS2X.StringMatch.STARTS_WITH, "Ann"), null, 5));
  check((await byDealer).rooms.map((r) => r.name).includes("High table"), "a StringMatch across groups");
  const none = waitFor(alice, E.ROOM_FIND_RESULT, () => true, "find nothing");
  alice.send(new SFS2X.FindRoomsRequest(new M("stake", SFS2X.NumberMatch.LESS_THAN, 0), "default"));
  check((await none).rooms.length === 0, "nothing below 0");
  const seated = waitFor(alice, E.ROOM_JOIN, (e) => e.room.name === "High table", "quick join");
  const modSees = waitFor(mod, E.USER_ENTER_ROOM, (e) => e.user.name === "alice", "alice sits down");
  alice.send(new SFS2X.QuickJoinOrCreateRoomRequest(rich, ["default"], new SFS2X.RoomSettings("unused")));
  check((await seated).room.getUserByName("mod"), "alice joined mod's table");
  await modSees;
  const mine = new SFS2X.RoomSettings("Alice's quick table");
  mine.isGame = true;
  mine.maxUsers = 3;
  const created = waitFor(alice, E.ROOM_JOIN, (e) => e.room.name === "Alice's quick table", "quick create");
  const noMatch = new M("stake", SFS2X.NumberMatch.EQUALS, 7);
  alice.send(new SFS2X.QuickJoinOrCreateRoomRequest(noMatch, ["default"], mine, highRoom));
  const quickTable = (await created).room;
  check(quickTable.isGame && quickTable.getUserByName("alice"), "no match: created and joined");
  const refused = waitFor(alice, E.ROOM_JOIN_ERROR, () => true, "quick create refused");
  alice.send(new SFS2X.QuickJoinOrCreateRoomRequest(noMatch, ["default"], mine));
  check((await refused).errorCode === 12, "the name is taken: 12, as a join error");
  // FindUsers (a=28): by name in the zone, and the players of a room.
  const U = SFS2X.UserProperties;
  const byName = waitFor(alice, E.USER_FIND_RESULT, () => true, "find users by name");
  alice.send(new SFS2X.FindUsersRequest(new M(U.NAME, SFS2X.StringMatch.EQUALS, "mod")));
  const named = (await byName).users;
  check(named.length === 1 && named[0].name === "mod" && named[0].isModerator, "FindUsers finds mod");
  const players = waitFor(alice, E.USER_FIND_RESULT, () => true, "find players");
  alice.send(new SFS2X.FindUsersRequest(new M(U.IS_PLAYER, SFS2X.BoolMatch.EQUALS, true), highRoom));
  const seatedNames = (await players).users.map((u) => u.name).sort();
  check(seatedNames.join(",") === "mod", "the high table's players: mod (alice moved on): " + seatedNames);
  const leftQuick = waitFor(alice, E.USER_EXIT_ROOM, (e) => e.user.isItMe && e.room.name === "Alice's quick table", "leave quick");
  alice.send(new SFS2X.LeaveRoomRequest(quickTable));
  await leftQuick;
  step("search");

  // The owner changes her room (a=9 / a=19 / a=8); the group's subscribers see it too.
  const own = new SFS2X.RoomSettings("Alice's room");
  own.isGame = true;
  own.maxUsers = 4;
  own.maxSpectators = 1;
  const dave = await connect();
  check((await login(dave, "dave", "", "demo")).ok, "dave logs in");
  const ownJoined = waitFor(alice, E.ROOM_JOIN, (e) => e.room.name === "Alice's room", "join own room");
  const ownAtMod = waitFor(mod, E.ROOM_ADD, (e) => e.room.name === "Alice's room", "own room at mod");
  const ownAtDave = waitFor(dave, E.ROOM_ADD, (e) => e.room.name === "Alice's room", "own room at dave");
  alice.send(new SFS2X.CreateRoomRequest(own, true));
  const ownRoom = (await ownJoined).room;
  const modRoom = (await ownAtMod).room;
  const locked = waitFor(alice, E.ROOM_PASSWORD_STATE_CHANGE, (e) => e.room.id === ownRoom.id, "password set");
  const lockedAtMod = waitFor(mod, E.ROOM_PASSWORD_STATE_CHANGE, (e) => e.room.id === ownRoom.id, "password at mod");
  alice.send(new SFS2X.ChangeRoomPasswordStateRequest(ownRoom, "secret"));
  check((await locked).room.isPasswordProtected, "protected now");
  await lockedAtMod;
  check(modRoom.isPasswordProtected, "mod's copy of the room is protected too");
  const resized = waitFor(alice, E.ROOM_CAPACITY_CHANGE, (e) => e.room.id === ownRoom.id, "capacity");
  alice.send(new SFS2X.ChangeRoomCapacityRequest(ownRoom, 2, 0));
  const sized = (await resized).room;
  check(sized.maxUsers === 2 && sized.maxSpectators === 0, "2 players, no spectators");
  const renamed = waitFor(alice, E.ROOM_NAME_CHANGE, (e) => e.room.id === ownRoom.id, "rename");
  alice.send(new SFS2X.ChangeRoomNameRequest(ownRoom, "Alice's den"));
  const rn = await renamed;
  check(rn.oldName === "Alice's room" && rn.room.name === "Alice's den", "renamed");
  const notYours = waitFor(dave, E.ROOM_CAPACITY_CHANGE_ERROR, () => true, "not the owner");
  dave.send(new SFS2X.ChangeRoomCapacityRequest((await ownAtDave).room, 10, 0));
  check((await notYours).errorCode === 31, "only the owner: 31");
  dave.disconnect();
  const leftOwn = waitFor(alice, E.USER_EXIT_ROOM, (e) => e.user.isItMe && e.room.id === ownRoom.id, "leave own");
  alice.send(new SFS2X.LeaveRoomRequest(ownRoom));
  await leftOwn;
  step("owner");

  // Invitations (a=300 / a=301): alice invites mod, mod accepts; a second answer is refused.
  const modUser = named[0]; // found by FindUsers above
  const invited = waitFor(mod, E.INVITATION, () => true, "invitation at mod");
  const inviteParams = new SFS2X.SFSObject();
  inviteParams.putUtfString("table", "BJ-7");
  alice.send(new SFS2X.InviteUsersRequest([modUser], 20, inviteParams));
  const invitation = (await invited).invitation;
  check(invitation.inviter.name === "alice" && invitation.params.getUtfString("table") === "BJ-7", "mod is invited");
  const answered = waitFor(alice, E.INVITATION_REPLY, () => true, "invitation reply at alice");
  const answerParams = new SFS2X.SFSObject();
  answerParams.putInt("seat", 2);
  mod.send(new SFS2X.InvitationReplyRequest(invitation, SFS2X.InvitationReply.ACCEPT, answerParams));
  const reply = await answered;
  check(reply.invitee.name === "mod" && reply.reply === 0 && reply.data.getInt("seat") === 2, "mod accepted");
  const twice = waitFor(mod, E.INVITATION_REPLY_ERROR, () => true, "second answer refused");
  mod.send(new SFS2X.InvitationReplyRequest(invitation, SFS2X.InvitationReply.REFUSE));
  check((await twice).errorCode === 42, "answered already: 42");
  step("invitation");

  const out = waitFor(alice, E.LOGOUT, () => true, "logout");
  alice.send(new SFS2X.LogoutRequest());
  await out;
  step("logout");

  alice.disconnect();
  mod.disconnect();
  console.log("OK");
  process.exit(0);
}

main().catch((err) => fail(err && err.message ? err.message : String(err)));
