// Builds a pg.Pool from poolguard's NodePostgres variables the way docs/profiles.md shows, and prints the options
// the pool holds and the application_name a client of it would send. Nothing connects.
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
const client = new pool.Client(pool.options);

console.log(`max=${pool.options.max}`);
console.log(`min=${pool.options.min}`);
console.log(`connectionTimeoutMillis=${pool.options.connectionTimeoutMillis}`);
console.log(`idleTimeoutMillis=${pool.options.idleTimeoutMillis}`);
console.log(`maxLifetimeSeconds=${pool.options.maxLifetimeSeconds}`);
console.log(`application_name=${client.connectionParameters.application_name}`);
pool.end();
