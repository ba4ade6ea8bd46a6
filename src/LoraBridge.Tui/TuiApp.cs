using System.Runtime.InteropServices;
using Terminal.Gui.App;

namespace LoraBridge.Tui;

/// <summary>Runs the <see cref="MainWindow"/> on the terminal until the user quits.</summary>
public static class TuiApp
{
    /// <summary>Printed before the host starts Python, so that the first seconds are not a blank screen.</summary>
    public const string LoadingMessage = "lorabridge tui: starting Python and torch (a few seconds)…";

    /// <summary>True when stdin and stdout are a terminal (the UI cannot run otherwise).</summary>
    public static bool HasTerminal => !Console.IsInputRedirected && !Console.IsOutputRedirected;

    /// <summary>
    /// Runs the UI. While it runs, the process's stderr (the host's log lines, Python and torch warnings) goes to
    /// <paramref name="logPath"/>: anything written to the terminal behind Terminal.Gui's back would corrupt the screen.
    /// </summary>
    /// <param name="vm">The form state.</param>
    /// <param name="generator">The workspace adapter.</param>
    /// <param name="logPath">File that receives stderr while the UI runs.</param>
    public static void Run(GeneratorViewModel vm, WorkspaceGenerator generator, string logPath)
    {
        using var redirect = StderrRedirect.To(logPath);
        // The form comes back as it was left; it is saved after every job and on exit.
        var settingsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(logPath))!, SettingsStore.FileName);
        if (SettingsStore.Load(settingsPath, out var problem) is { } saved) vm.Apply(saved);
        else if (problem is not null) Console.Error.WriteLine("warning: " + problem);
        void Save()
        {
            try { SettingsStore.Save(settingsPath, vm.ToSettings()); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"warning: settings not saved to {settingsPath}: {ex.Message}"); }
        }
        if (vm.Checkpoint.Length == 0) vm.Checkpoint = generator.CurrentCheckpoint;
        vm.UseImageUpscalers(generator.UpscalerChoices());
        generator.CheckpointOf = () => vm.JobCheckpoint;
        generator.PreviewMethodOf = () => vm.JobPreviewMethod;
        vm.Changed += () =>
        {
            if (vm.State != JobState.Idle) return;
            Save();
            // A job on another checkpoint brought its own tokenizer: the token counter follows.
            if (generator.Chunker is { } c && !ReferenceEquals(c, vm.Chunker)) vm.Chunker = c;
        };
        using var app = Application.Create().Init();
        var running = true;
        // After the main loop has ended, job outcomes have no UI left to update.
        void Post(Action a) { if (Volatile.Read(ref running)) app.Invoke(a); }
        using var window = new MainWindow(vm, generator.GenerateAsync, generator.LoraCards, Post, generator.CheckpointChoices(),
            () => generator.FamilyOf(vm.Checkpoint), generator.EmbeddingCards);
        app.Keyboard.KeyDown += (_, key) =>
        {
            if (window.HandleKey(key, () => app.RequestStop())) key.Handled = true;
        };
        // Find the checkpoint while the user types; the demo model's LoRAs appear in the list when it is done.
        _ = vm.PrepareAsync(async ct =>
        {
            var name = await generator.PrepareAsync(ct).ConfigureAwait(false);
            // The token counter needs the checkpoint's tokenizer; it is known once the checkpoint is.
            var chunker = generator.Chunker;
            Post(() => vm.Chunker = chunker);
            return name;
        }, Post);
        app.Run(window);
        Volatile.Write(ref running, false);
        Save();
        // Leaving with a job running: stop it and let the engine restore the weights before Python shuts down.
        vm.Cancel();
        if (!vm.WaitForJob(TimeSpan.FromSeconds(60)))
            Console.Error.WriteLine("warning: the running job did not stop within 60 s");
    }

    /// <summary>Points file descriptor 2 at a log file and back (POSIX only; elsewhere only <see cref="Console.Error"/> moves).</summary>
    private sealed class StderrRedirect : IDisposable
    {
        private readonly int _saved = -1;
        private readonly TextWriter _savedWriter;
        private readonly StreamWriter _log;

        private StderrRedirect(string path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            _log = new StreamWriter(file) { AutoFlush = true };
            _savedWriter = Console.Error;
            Console.SetError(_log);
            if (!OperatingSystem.IsWindows())
            {
                _saved = Dup(2);
                if (_saved >= 0) _ = Dup2((int)file.SafeFileHandle.DangerousGetHandle(), 2);
            }
        }

        public static StderrRedirect To(string path) => new(path);

        public void Dispose()
        {
            Console.SetError(_savedWriter);
            if (_saved >= 0)
            {
                _ = Dup2(_saved, 2);
                _ = Close(_saved);
            }
            _log.Dispose();
        }

        [DllImport("libc", EntryPoint = "dup")]
        private static extern int Dup(int fd);

        [DllImport("libc", EntryPoint = "dup2")]
        private static extern int Dup2(int fd, int fd2);

        [DllImport("libc", EntryPoint = "close")]
        private static extern int Close(int fd);
    }
}
