using System.Text.RegularExpressions;

namespace LoraBridge.Engine.Tests;

/// <summary>Reads the little-endian int64 / float64 / float32 C-order .npy files of the conformance data.</summary>
internal static partial class Npy
{
    public sealed record Array(int[] Shape, double[] Values)
    {
        public long[] Longs => Values.Select(v => (long)v).ToArray();
    }

    public static Array Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || System.Text.Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path}: not a .npy file");
        int major = bytes[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        var header = System.Text.Encoding.ASCII.GetString(bytes, start, headerLength);
        var descr = Descr().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: Fortran order");
        var shape = Shape().Match(header).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse).ToArray();
        int count = shape.Aggregate(1, (a, b) => a * b);
        var data = bytes.AsSpan(start + headerLength);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = descr switch
            {
                "<i8" => BitConverter.ToInt64(data.Slice(i * 8, 8)),
                "<f8" => BitConverter.ToDouble(data.Slice(i * 8, 8)),
                "<f4" => BitConverter.ToSingle(data.Slice(i * 4, 4)),
                _ => throw new InvalidDataException($"{path}: dtype {descr} not supported here"),
            };
        }
        return new Array(shape, values);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex Descr();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex Shape();
}
