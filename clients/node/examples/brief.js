// The brief's example, as written plus the awaits an asynchronous client needs.
// Connects to REDIS_URL or 127.0.0.1:6379 (`make run`); on a server without the module it
// runs the same limiter as a Lua script. Prints ten true and five false.
const { DistributedRateLimiter } = require('distributed-rate-limiter');

async function main() {
  const rateLimiter = new DistributedRateLimiter();
  await rateLimiter.reset("user123"); // a fresh start on every run (a server keeps usage for a minute)
  await rateLimiter.configureRateLimit("user123", { limit: 10, windowMs: 60000 });
  for (let i = 0; i < 15; i++) console.log(`Request ${i + 1} from user123: ${await rateLimiter.isAllowed("user123")}`);
  await rateLimiter.close();
}

main();
