export { CmdopClient } from './client';
export type { AttachOptions, CreateTerminalOptions, ExecResult, ExecuteOptions, Mode } from './client';
export { TerminalAttachment } from './attachment';
export * from './errors';
export type { ClientOptions } from './config';
export { AuthApi } from './auth';
export type { Role } from './auth';
export { FilesApi, FileType, fileTypeName } from './files';
export type { FileEntry, FileListPage, PageOptions, TransferOptions, TransferProgress, TransferResult, UploadOptions } from './files';
