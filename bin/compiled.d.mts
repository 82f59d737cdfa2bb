export declare const BUILD_CONFIG: string;
export declare const OUT_DIR: string;
export declare const STAMP: string;
export declare const SOURCE_ENTRY: string;
export declare const COMPILED_ENTRY: string;
export declare function sourceDirs(root: string): string[];
export declare function filesUnder(root: string, dir: string): string[];
export declare function sourceHash(root: string): string;
export declare function compiledEntry(root: string): string | undefined;
