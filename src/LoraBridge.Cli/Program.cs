using LoraBridge.Cli;

StartupTimings.MainEntered();

// Ctrl+C: System.CommandLine cancels the action's token; the Python runtime turns that into a
// KeyboardInterrupt on its thread, the action returns 130 and disposing the host shuts Python down.
return await CommandCatalog.Create().Parse(args).InvokeAsync();
