// A NestJS app whose @nestjs/throttler decides through the module (or the Lua script on a
// server without it): 10 requests per minute per client, 3 per minute on POST /login.
// Plain JavaScript: the decorators applied as functions (in TypeScript, write @Controller()...).
// Connects to REDIS_URL or redis://127.0.0.1:6379, listens on PORT (default 3000; 0: any
// free port) and prints its address. Try: for i in $(seq 12); do curl -si localhost:3000/ | head -1; done
require('reflect-metadata');
const { Module, Controller, Get, Post } = require('@nestjs/common');
const { APP_GUARD, NestFactory } = require('@nestjs/core');
const { ThrottlerModule, ThrottlerGuard, Throttle } = require('@nestjs/throttler');
const { DistributedThrottlerStorage } = require('distributed-rate-limiter/nestjs');

class AppController {
  hello() {
    return { hello: 'world' };
  }

  login() {
    return { ok: true };
  }
}
const method = (name) => Object.getOwnPropertyDescriptor(AppController.prototype, name);
Get()(AppController.prototype, 'hello', method('hello'));
Post('login')(AppController.prototype, 'login', method('login'));
Throttle({ default: { limit: 3, ttl: 60_000 } })(AppController.prototype, 'login', method('login'));
Controller()(AppController);

class AppModule {}
Module({
  imports: [
    ThrottlerModule.forRoot({
      throttlers: [{ ttl: 60_000, limit: 10 }],
      storage: new DistributedThrottlerStorage({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' }),
    }),
  ],
  controllers: [AppController],
  providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
})(AppModule);

async function main() {
  const app = await NestFactory.create(AppModule, { logger: ['error'] });
  app.enableShutdownHooks(); // SIGTERM/SIGINT: app.close(), which closes the storage's connection
  await app.listen(Number(process.env.PORT || 3000), '127.0.0.1');
  console.log(`listening on ${await app.getUrl()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
