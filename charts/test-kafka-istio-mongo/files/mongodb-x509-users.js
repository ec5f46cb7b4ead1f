// Keeps MongoDB's X.509 users (database $external) equal to the list in the JSON file named by
// KIOSK_MONGODB_X509_USERS_FILE: {"users": [{"user": "<subject DN, RFC 2253>", "roles": [...]}]}.
// Run by mongosh against a mongod started without --auth on 127.0.0.1 in the MongoDB pod's init
// container (mongodb-x509-users.sh), before mongod starts with TLS and --auth: it needs no
// credential. Creates the missing users, sets the roles of the existing ones, and drops the users
// it made earlier that the list no longer names (customData.managedBy), so a workload taken out
// of the release loses its access at the next start. X.509 users have no password: the subject
// of the client certificate the workload's sidecar presents is the user.
const MANAGED_BY = "kiosk-test-kafka-istio-mongo";
const file = process.env.KIOSK_MONGODB_X509_USERS_FILE || "/kiosk/x509-users.json";
const want = JSON.parse(fs.readFileSync(file, "utf8")).users;
const external = db.getSiblingDB("$external");

function ok(what, reply) {
  if (reply.ok !== 1) {
    throw new Error(`${what}: ${JSON.stringify(reply)}`);
  }
  return reply;
}

const names = new Set(want.map((u) => u.user));
for (const u of want) {
  const existing = ok(`usersInfo ${u.user}`, external.runCommand({ usersInfo: u.user })).users;
  const fields = { roles: u.roles, customData: { managedBy: MANAGED_BY } };
  if (existing.length === 0) {
    ok(`createUser ${u.user}`, external.runCommand({ createUser: u.user, ...fields }));
    print(`x509-users: created ${u.user} ${JSON.stringify(u.roles)}`);
  } else {
    ok(`updateUser ${u.user}`, external.runCommand({ updateUser: u.user, ...fields }));
    print(`x509-users: kept ${u.user} ${JSON.stringify(u.roles)}`);
  }
}
const managed = ok("usersInfo", external.runCommand({ usersInfo: 1, filter: { "customData.managedBy": MANAGED_BY } })).users;
for (const u of managed) {
  if (!names.has(u.user)) {
    ok(`dropUser ${u.user}`, external.runCommand({ dropUser: u.user }));
    print(`x509-users: dropped ${u.user} (no longer a client of the release)`);
  }
}
