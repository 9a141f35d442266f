/* contract-emit: see contract-emit.c */
#ifndef WF_CONTRACT_EMIT_H
#define WF_CONTRACT_EMIT_H

#define CONTRACT_NOW 1750000000000LL

/* Writes DIR/{event,warning,ack,state,deadletter}.bin, each packed by the
 * codec. Returns 0, or 1 after printing why to stderr. */
int contract_emit(const char *dir);

#endif
