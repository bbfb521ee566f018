// The workflow bundle's entry: every workflow the worker registers.
export { jobWorkflow, cancelSignal, statusQuery } from './job';
export { janitorWorkflow } from './janitor';
export { groupWorkflow } from './group';
