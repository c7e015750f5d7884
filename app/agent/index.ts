export { Agent, AgentRefusedError } from './agent';
export type { AgentOptions, AgentStatus } from './agent';
