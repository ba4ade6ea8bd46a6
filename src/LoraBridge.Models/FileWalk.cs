namespace LoraBridge.Models;

/// <summary>Directory walking in the order A1111's <c>walk_files</c> yields files, which decides which file wins a name collision.</summary>
public static partial class FileWalk
{
    /// <summary>How deep below a root the walk descends; deeper folders are not listed (A1111 folders nest a few levels).</summary>
    public const int MaxDepth = 32;

    /// <summary>
    /// Every file under <paramref name="root"/> (recursively, following links, hidden ones included as A1111's default
    /// <c>list_hidden_files</c> does) whose lowercase extension is in <paramref name="extensions"/>: folders in natural order of
    /// their full path, files in natural order within each folder. A missing root yields nothing.
    /// The walk survives hostile trees: a folder reached twice (a symlink loop, or two links to one folder) is entered
    /// once, identified by device and inode; it stops <see cref="MaxDepth"/> levels down; only regular files are
    /// returned, so FIFOs (whose open blocks forever), sockets, devices and dangling links never reach a reader.
    /// </summary>
    public static IEnumerable<string> Files(string root, IReadOnlyCollection<string> extensions, bool includeHidden = true)
    {
        if (!Directory.Exists(root)) return [];
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = false,
            AttributesToSkip = 0,
            IgnoreInaccessible = true,
            ReturnSpecialDirectories = false,
        };
        var dirs = new List<string>();
        var seen = new HashSet<(ulong, ulong)>();
        var pending = new Stack<(string Dir, int Depth)>();
        pending.Push((root, 0));
        while (pending.Count > 0)
        {
            var (dir, depth) = pending.Pop();
            if (UnixFile.Identity(dir) is { } id && !seen.Add(id)) continue;
            dirs.Add(dir);
            if (depth >= MaxDepth) continue;
            try
            {
                foreach (var sub in Directory.EnumerateDirectories(dir, "*", options))
                    pending.Push((sub, depth + 1));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A folder that vanished or cannot be listed contributes nothing; the rest of the walk goes on.
            }
        }
        var sortedDirs = dirs.OrderBy(d => d, NaturalComparer.Instance).ToList();

        var result = new List<string>();
        foreach (var dir in sortedDirs)
        {
            if (!includeHidden && (dir.Contains("/.") || dir.Contains("\\.")))
                continue;
            List<string> files;
            try
            {
                files = Directory.EnumerateFiles(dir, "*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true })
                    .Select(f => Path.GetFileName(f)!).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var f in files.OrderBy(f => f, NaturalComparer.Instance))
            {
                if (!extensions.Contains(Path.GetExtension(f).ToLowerInvariant())) continue;
                var path = Path.Combine(dir, f);
                if (UnixFile.IsRegularFile(path) is false) continue;
                result.Add(path);
            }
        }
        return result;
    }

    /// <summary>
    /// <c>stat(2)</c> through libc where its layout is known (Linux x64 and arm64), for what .NET does not expose:
    /// the file type (FIFO, socket, device) and the device + inode pair that identifies a folder however it is reached.
    /// </summary>
    internal static class UnixFile
    {
        private const uint TypeMask = 0xF000, Regular = 0x8000;

        [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "stat", SetLastError = true)]
        private static extern int Stat(byte[] path, byte[] buffer);

        // Offset of st_mode in struct stat: x86_64 has st_nlink (8 bytes) before it, the generic (arm64) layout after it.
        private static int? ModeOffset => !OperatingSystem.IsLinux() ? null
            : System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
            {
                System.Runtime.InteropServices.Architecture.X64 => 24,
                System.Runtime.InteropServices.Architecture.Arm64 => 16,
                _ => null,
            };

        private static bool _unavailable;

        private static bool TryStat(string path, out ulong dev, out ulong ino, out uint mode)
        {
            dev = ino = mode = 0;
            if (_unavailable || ModeOffset is not { } modeAt) return false;
            var name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
            var buf = new byte[256]; // struct stat is 144 bytes on x86_64, 128 on arm64
            try
            {
                if (Stat(name, buf) != 0) return false;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                _unavailable = true; // musl or an old glibc: fall back to what .NET offers
                return false;
            }
            dev = BitConverter.ToUInt64(buf, 0);
            ino = BitConverter.ToUInt64(buf, 8);
            mode = BitConverter.ToUInt32(buf, modeAt);
            return true;
        }

        /// <summary>Device and inode of what <paramref name="path"/> names (links followed), or null where unknown.</summary>
        public static (ulong, ulong)? Identity(string path)
        {
            if (TryStat(path, out var dev, out var ino, out _)) return (dev, ino);
            // Elsewhere: the fully resolved path of the folder, which still catches symlink loops.
            try
            {
                var target = Directory.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
                var h = (ulong)StringComparer.Ordinal.GetHashCode(target);
                return (h, (ulong)target.Length);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>True for a regular file (links followed), false for anything else, null when it cannot be told.</summary>
        public static bool? IsRegularFile(string path)
        {
            if (TryStat(path, out _, out _, out var mode)) return (mode & TypeMask) == Regular;
            if (!_unavailable && ModeOffset is not null) return false; // stat failed: a dangling link, or gone
            // Without stat: a name that exists as a file; special files then cost an error entry, not a hang of the walk.
            return File.Exists(path) ? null : false;
        }
    }

    /// <summary>A1111's <c>natural_sort_key</c>: digit runs compare as numbers, other text case-insensitively.</summary>
    /// <remarks>
    /// Same order as comparing Python's <c>re.split(r'(\d+)', s)</c> lists, but walked in place: a library of
    /// thousands of files is sorted on every scan, and splitting with a regex and parsing numbers per comparison was
    /// a measurable part of a warm <c>loras list</c>.
    /// </remarks>
    public sealed class NaturalComparer : IComparer<string>
    {
        /// <summary>The shared instance.</summary>
        public static readonly NaturalComparer Instance = new();

        /// <inheritdoc />
        public int Compare(string? x, string? y)
        {
            x ??= "";
            y ??= "";
            int i = 0, j = 0;
            // Parts alternate text, number, text, …: both strings start with a (possibly empty) text part.
            while (true)
            {
                int c = CompareText(x, ref i, y, ref j);
                if (c != 0) return c;
                bool moreX = i < x.Length, moreY = j < y.Length;
                // Python compares the part lists: when one list ends first it is the smaller one.
                if (!moreX || !moreY) return moreX.CompareTo(moreY);
                c = CompareNumber(x, ref i, y, ref j);
                if (c != 0) return c;
                // A string ending in digits still has an empty text part after them, on both sides alike.
            }
        }

        private static bool IsDigit(char c) => char.IsDigit(c);

        // Text runs up to the next digit, lower-cased, ordinal; a run that ends first is a prefix and sorts first.
        private static int CompareText(string x, ref int i, string y, ref int j)
        {
            while (true)
            {
                bool endX = i >= x.Length || IsDigit(x[i]);
                bool endY = j >= y.Length || IsDigit(y[j]);
                if (endX || endY) return endX == endY ? 0 : endX ? -1 : 1;
                int c = char.ToLowerInvariant(x[i]).CompareTo(char.ToLowerInvariant(y[j]));
                if (c != 0) return c;
                i++;
                j++;
            }
        }

        // Digit runs by value: leading zeros dropped, then more digits is larger, then digit by digit.
        private static int CompareNumber(string x, ref int i, string y, ref int j)
        {
            int startX = i, startY = j;
            while (i < x.Length && IsDigit(x[i])) i++;
            while (j < y.Length && IsDigit(y[j])) j++;
            while (startX < i - 1 && char.GetNumericValue(x[startX]) == 0) startX++;
            while (startY < j - 1 && char.GetNumericValue(y[startY]) == 0) startY++;
            int lengths = (i - startX).CompareTo(j - startY);
            if (lengths != 0) return lengths;
            for (int a = startX, b = startY; a < i; a++, b++)
            {
                int c = char.GetNumericValue(x[a]).CompareTo(char.GetNumericValue(y[b]));
                if (c != 0) return c;
            }
            return 0;
        }
    }
}
