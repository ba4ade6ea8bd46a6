using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraBridge.Python;

/// <summary>
/// Verdicts of earlier probes, kept in the data folder so a command whose candidates have not changed starts its
/// interpreter without running the probe (which imports torch in a subprocess: 1.5–2.5 s a candidate).
/// </summary>
/// <remarks>
/// An entry is valid only while every file that decided it is unchanged: the candidate itself (real path,
/// modification time, size), the interpreter it ran (<c>sys.executable</c>), the venv's <c>pyvenv.cfg</c>,
/// libpython, torch's package folder and each site-packages folder (installing or removing a package changes the
/// folder's modification time). Wrapper scripts such as pyenv shims choose an interpreter from the working
/// directory and <c>PYENV_VERSION</c>, so those are part of their key. <c>PYTHONPATH</c> and <c>PYTHONHOME</c>
/// change what imports, so they are part of every key. The probe script's hash is stored too: a new LoraBridge
/// that asks candidates different questions ignores old verdicts. Unreadable files are ignored (and rewritten
/// by the next probe); writes go to a temp file that is then moved over the old one, so readers never see half a file.
/// </remarks>
public sealed class DiscoveryCache(string file)
{
    private const int FormatVersion = 1;

    /// <summary>The cache file.</summary>
    public string File { get; } = file;

    /// <summary>Why the last <see cref="Load"/> found nothing usable (missing, unreadable, other probe), or null.</summary>
    public string? LoadProblem { get; private set; }

    /// <summary>One stored verdict.</summary>
    public sealed class Entry
    {
        /// <summary>The candidate path as discovery found it (not resolved: a venv's <c>bin/python</c> is a link).</summary>
        [JsonPropertyName("path")] public string Path { get; set; } = "";
        /// <summary>Stamps of every file that decided the verdict, in a fixed order.</summary>
        [JsonPropertyName("stamps")] public List<string> Stamps { get; set; } = [];
        /// <summary>True when the candidate was usable.</summary>
        [JsonPropertyName("usable")] public bool Usable { get; set; }
        /// <summary>Why it was skipped.</summary>
        [JsonPropertyName("reason")] public string? Reason { get; set; }
        /// <summary>What the interpreter said about itself, when it could be run.</summary>
        [JsonPropertyName("probe")] public ProbeDto? Probe { get; set; }
    }

    /// <summary>Serialized form of <see cref="PythonProbe"/>.</summary>
    public sealed class ProbeDto
    {
        /// <summary><see cref="PythonProbe.Executable"/>.</summary>
        [JsonPropertyName("executable")] public string Executable { get; set; } = "";
        /// <summary><see cref="PythonProbe.Version"/> as text.</summary>
        [JsonPropertyName("version")] public string Version { get; set; } = "";
        /// <summary><see cref="PythonProbe.Prefix"/>.</summary>
        [JsonPropertyName("prefix")] public string Prefix { get; set; } = "";
        /// <summary><see cref="PythonProbe.BasePrefix"/>.</summary>
        [JsonPropertyName("base_prefix")] public string BasePrefix { get; set; } = "";
        /// <summary><see cref="PythonProbe.SitePackages"/>.</summary>
        [JsonPropertyName("site_packages")] public List<string> SitePackages { get; set; } = [];
        /// <summary><see cref="PythonProbe.SharedEnabled"/>.</summary>
        [JsonPropertyName("shared")] public bool Shared { get; set; }
        /// <summary><see cref="PythonProbe.LibPython"/>.</summary>
        [JsonPropertyName("libpython")] public string? LibPython { get; set; }
        /// <summary><see cref="PythonProbe.TorchVersion"/>.</summary>
        [JsonPropertyName("torch")] public string? Torch { get; set; }
        /// <summary><see cref="PythonProbe.TorchError"/>.</summary>
        [JsonPropertyName("torch_error")] public string? TorchError { get; set; }
        /// <summary><see cref="PythonProbe.TorchDir"/>.</summary>
        [JsonPropertyName("torch_dir")] public string? TorchDir { get; set; }
        /// <summary><see cref="PythonProbe.NumpyVersion"/>.</summary>
        [JsonPropertyName("numpy")] public string? Numpy { get; set; }
        /// <summary><see cref="PythonProbe.PillowVersion"/>.</summary>
        [JsonPropertyName("pillow")] public string? Pillow { get; set; }

        internal static ProbeDto From(PythonProbe p) => new()
        {
            Executable = p.Executable, Version = p.Version.ToString(), Prefix = p.Prefix, BasePrefix = p.BasePrefix,
            SitePackages = [.. p.SitePackages], Shared = p.SharedEnabled, LibPython = p.LibPython, Torch = p.TorchVersion,
            TorchError = p.TorchError, TorchDir = p.TorchDir, Numpy = p.NumpyVersion, Pillow = p.PillowVersion,
        };

        internal PythonProbe ToProbe() =>
            new(Executable, System.Version.Parse(Version), Prefix, BasePrefix, SitePackages, Shared, LibPython, Torch, TorchError, Numpy, Pillow)
            {
                TorchDir = TorchDir,
            };
    }

    /// <summary>The file's top level.</summary>
    internal sealed class FileDto
    {
        [JsonPropertyName("format")] public int Format { get; set; }
        [JsonPropertyName("probe_script")] public string ProbeScript { get; set; } = "";
        [JsonPropertyName("entries")] public List<Entry> Entries { get; set; } = [];
    }

    private readonly Lock _lock = new();
    private Dictionary<string, Entry>? _entries;
    private bool _dirty;

    /// <summary>Hash of the probe script the verdicts must come from.</summary>
    public static string ProbeScriptHash { get; } =
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(PythonDiscovery.ProbeScriptText)))[..16];

    /// <summary>Reads the file once; a missing, unreadable or outdated file gives an empty cache (and a <see cref="LoadProblem"/>).</summary>
    public void Load()
    {
        lock (_lock)
        {
            if (_entries is not null) return;
            _entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
            try
            {
                if (!System.IO.File.Exists(File)) { LoadProblem = "no cache file yet"; return; }
                var dto = JsonSerializer.Deserialize(System.IO.File.ReadAllBytes(File), DiscoveryCacheJson.Default.FileDto);
                if (dto is null || dto.Format != FormatVersion || dto.ProbeScript != ProbeScriptHash)
                {
                    LoadProblem = "the cache was written by another version of the probe";
                    return;
                }
                foreach (var e in dto.Entries)
                {
                    if (string.IsNullOrEmpty(e.Path) || e.Stamps.Count == 0) continue;
                    if (e.Usable && e.Probe is null) continue;
                    _entries[e.Path] = e;
                }
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or NotSupportedException
                                       or FormatException or ArgumentException or OverflowException)
            {
                // A broken cache must never stop the tool: forget it, probe, and write a good one.
                LoadProblem = $"unreadable cache file ({ex.GetType().Name}); it will be rewritten";
                _entries.Clear();
                _dirty = true;
            }
        }
    }

    /// <summary>
    /// The stored verdict for <paramref name="path"/> when every stamp still matches; null (and why) otherwise.
    /// </summary>
    public PythonCandidate? TryGet(PythonSource source, string path, out string? stale)
    {
        Load();
        Entry? e;
        lock (_lock) _entries!.TryGetValue(path, out e);
        stale = null;
        if (e is null) { stale = "no cached verdict"; return null; }
        PythonProbe? probe;
        try
        {
            probe = e.Probe?.ToProbe();
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException)
        {
            stale = "unreadable cached probe";
            return null;
        }
        var now = Stamps(path, probe);
        if (!now.SequenceEqual(e.Stamps, StringComparer.Ordinal))
        {
            var changed = now.Zip(e.Stamps).FirstOrDefault(p => p.First != p.Second);
            stale = changed == default ? "the files that decide the verdict changed" : $"changed: {StampPath(changed.First)}";
            return null;
        }
        // Re-judge with today's rules rather than trusting the stored verdict's status.
        var reason = probe is null ? e.Reason : PythonDiscovery.Reject(probe);
        if (e.Usable != (reason is null)) { stale = "the stored verdict no longer follows from its probe"; return null; }
        return new PythonCandidate(source, path, reason is null ? CandidateStatus.Chosen : CandidateStatus.Skipped, reason ?? null, probe)
        { FromCache = true };
    }

    /// <summary>Records a freshly probed verdict (written by <see cref="Save"/>).</summary>
    public void Put(PythonCandidate candidate)
    {
        if (candidate.Status == CandidateStatus.NotTried) return;
        Load();
        // A candidate that could not be run at all (a missing file) is cheap to check again; keep only real probes
        // and runs that failed in a way worth remembering.
        var entry = new Entry
        {
            Path = candidate.Path,
            Stamps = Stamps(candidate.Path, candidate.Probe),
            Usable = candidate.Status == CandidateStatus.Chosen,
            Reason = candidate.Reason,
            Probe = candidate.Probe is { } p ? ProbeDto.From(p) : null,
        };
        lock (_lock)
        {
            _entries![candidate.Path] = entry;
            _dirty = true;
        }
    }

    /// <summary>Forgets the verdict for <paramref name="path"/> (it failed at boot); written by <see cref="Save"/>.</summary>
    public bool Remove(string path)
    {
        Load();
        lock (_lock)
        {
            if (!_entries!.Remove(path)) return false;
            _dirty = true;
            return true;
        }
    }

    /// <summary>Writes the file when something changed: temp file in the same folder, then an atomic move.</summary>
    /// <returns>False when the folder is not writable (the cache is an optimisation; nothing fails without it).</returns>
    public bool Save()
    {
        FileDto dto;
        lock (_lock)
        {
            if (!_dirty || _entries is null) return true;
            dto = new FileDto { Format = FormatVersion, ProbeScript = ProbeScriptHash, Entries = [.. _entries.Values.OrderBy(e => e.Path, StringComparer.Ordinal)] };
            _dirty = false;
        }
        string? tmp = null;
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(File))!;
            Directory.CreateDirectory(dir);
            tmp = Path.Combine(dir, $".{Path.GetFileName(File)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
            System.IO.File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(dto, DiscoveryCacheJson.Default.FileDto));
            System.IO.File.Move(tmp, File, overwrite: true);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try { if (tmp is not null) System.IO.File.Delete(tmp); } catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException) { }
            return false;
        }
    }

    /// <summary>
    /// The stamps (<c>path|mtime|size</c>, or <c>path|absent</c>) of every file that decides a verdict, in a fixed order.
    /// </summary>
    public static List<string> Stamps(string candidate, PythonProbe? probe)
    {
        var list = new List<string>
        {
            "env|PYTHONPATH=" + Environment.GetEnvironmentVariable("PYTHONPATH") + "|PYTHONHOME=" + Environment.GetEnvironmentVariable("PYTHONHOME"),
            Stamp(candidate),
            Stamp(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(candidate) ?? "/") ?? "/", "pyvenv.cfg")),
        };
        if (IsScript(candidate))
        {
            // pyenv-style shims pick the interpreter from the working directory and the environment.
            list.Add("script|cwd=" + Environment.CurrentDirectory + "|PYENV_VERSION=" + Environment.GetEnvironmentVariable("PYENV_VERSION")
                     + "|VIRTUAL_ENV=" + Environment.GetEnvironmentVariable("VIRTUAL_ENV") + "|CONDA_PREFIX=" + Environment.GetEnvironmentVariable("CONDA_PREFIX"));
            var shims = Path.GetDirectoryName(candidate);
            if (shims is not null && Path.GetFileName(shims) == "shims")
                list.Add(Stamp(Path.Combine(Path.GetDirectoryName(shims) ?? "/", "version")));
        }
        if (probe is null) return list;
        list.Add(Stamp(probe.Executable));
        if (probe.LibPython is not null) list.Add(Stamp(probe.LibPython));
        if (probe.TorchDir is not null) list.Add(Stamp(probe.TorchDir));
        list.Add(Stamp(Path.Combine(probe.Prefix, "pyvenv.cfg")));
        foreach (var site in probe.SitePackages) list.Add(Stamp(site));
        return list;
    }

    private static string StampPath(string stamp) => stamp.Split('|')[0];

    private static string Stamp(string path)
    {
        try
        {
            FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
            if (!info.Exists) return path + "|absent";
            var real = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
            if (!real.Exists) return path + "|dangling";
            long size = real is FileInfo f ? f.Length : 0;
            return $"{path}|{real.FullName}|{real.LastWriteTimeUtc.Ticks}|{size}";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return path + "|unreadable";
        }
    }

    private static bool IsScript(string path)
    {
        try
        {
            using var fs = System.IO.File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            return fs.Read(head) == 2 && head[0] == (byte)'#' && head[1] == (byte)'!';
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }
}

/// <summary>Source-generated serializer: every command reads the cache, and reflection-based JSON costs start-up JIT time.</summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(DiscoveryCache.FileDto))]
internal sealed partial class DiscoveryCacheJson : JsonSerializerContext;
