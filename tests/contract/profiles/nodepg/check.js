// Builds a pg.Pool from poolguard's NodePostgres variables the way docs/profiles.md shows, and prints the options
// the pool holds and the application_name and options a client of it would send. Nothing connects, unless the
// argument "session" is given: then a client of the pool connects (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)
// and it prints what the session reports and what became of a transaction left idle for IDLE_SLEEP_MS.
'use strict';
const { Pool } = require('pg');

const env = process.env;
const pool = new Pool({
  max: Number(env.PG_POOL_MAX),
  min: Number(env.PG_POOL_MIN),
  connectionTimeoutMillis: Number(env.PG_POOL_CONNECTION_TIMEOUT_MILLIS),
  idleTimeoutMillis: Number(env.PG_POOL_IDLE_TIMEOUT_MILLIS),
  maxLifetimeSeconds: Number(env.PG_POOL_MAX_LIFETIME_SECONDS),
});

async function session() {
  const client = await pool.connect();
  // The server ends the session on its own: the client reports it as an error event, not as a rejected query.
  let ended = null;
  client.on('error', (err) => {
    ended = err;
  });
  const shown = await client.query('SHOW idle_in_transaction_session_timeout');
  console.log(`idle_in_transaction_session_timeout=${shown.rows[0].idle_in_transaction_session_timeout}`);
  await client.query('BEGIN');
  await client.query('SELECT 1');
  await new Promise((resolve) => setTimeout(resolve, Number(env.IDLE_SLEEP_MS)));
  try {
    await client.query('SELECT 1');
    console.log('after_idle=ok');
  } catch (err) {
    console.log(`after_idle=error: ${(ended || err).message}`);
  }
  client.release(true);
  await pool.end();
}

if (process.argv[2] === 'session') {
  session().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  const client = new pool.Client(pool.options);
  console.log(`max=${pool.options.max}`);
  console.log(`min=${pool.options.min}`);
  console.log(`connectionTimeoutMillis=${pool.options.connectionTimeoutMillis}`);
  console.log(`idleTimeoutMillis=${pool.options.idleTimeoutMillis}`);
  console.log(`maxLifetimeSeconds=${pool.options.maxLifetimeSeconds}`);
  console.log(`application_name=${client.connectionParameters.application_name}`);
  console.log(`options=${client.connectionParameters.options}`);
  pool.end();
}
