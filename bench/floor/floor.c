/*
 * floor: what a module command costs before it does anything of its own, for bench/profile.sh.
 *
 *   FLOOR.NOOP key        replies 1: the module command dispatcher, the context, a reply.
 *   FLOOR.REPLICATE key   replies 1 after one RedisModule_Replicate of
 *                         `rl.apply key 1700000000000@1700000000000` (the rl module must be
 *                         loaded too: Replicate looks the command up by name and refuses an
 *                         unknown one), in the format RL.ALLOW sends ("sb").
 *
 * The difference of the two is what RL.ALLOW's replication costs inside the command, and no
 * module can go below it with today's API: Redis looks the command's name up on every call
 * (lookupCommandByCString: an sds copy, a split on '|', a dict lookup) and builds one object per
 * argument. Built by bench/profile.sh with the redismodule.h that the redis-module crate ships.
 */
#include "redismodule.h"

static int noop(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    return RedisModule_ReplyWithLongLong(ctx, 1);
}

static int replicate(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    static const char state[] = "1700000000000@1700000000000";
    (void)argc;
    RedisModule_Replicate(ctx, "rl.apply", "sb", argv[1], state, sizeof state - 1);
    return RedisModule_ReplyWithLongLong(ctx, 1);
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "floor", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    if (RedisModule_CreateCommand(ctx, "floor.noop", noop, "write fast", 1, 1, 1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    if (RedisModule_CreateCommand(ctx, "floor.replicate", replicate, "write fast", 1, 1, 1) ==
        REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
