using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Memory;

namespace VmmSharp.Fuzz.Support;

/// <summary>
/// A boot target's input: a 5-byte prefix that chooses the machine, then the kernel image. The prefix is
/// RAM size (2 MiB + byte × 64 KiB, laid out as the PC machine does), CPU count (1 + byte mod the MP table's
/// limit), initrd length (16-bit × 16 bytes) and command-line length (0-255): so the fuzzer varies where sizes
/// and offsets meet guest memory, not only the image.
/// </summary>
internal sealed record BootInput(ulong MemorySize, int CpuCount, int InitrdLength, int CommandLineLength, byte[] Kernel)
{
    public const int PrefixLength = 5;

    public static BootInput Parse(ReadOnlySpan<byte> input)
    {
        Span<byte> prefix = stackalloc byte[PrefixLength];
        prefix.Clear();
        input[..Math.Min(input.Length, PrefixLength)].CopyTo(prefix);
        byte[] kernel = input.Length > PrefixLength ? input[PrefixLength..].ToArray() : [];
        return new BootInput(
            Layout.MinMemorySize + ((ulong)prefix[0] << 16),
            1 + (prefix[1] % MpTable.MaxCpus),
            (prefix[2] | (prefix[3] << 8)) * 16,
            prefix[4],
            kernel);
    }

    /// <summary>The bytes <see cref="Parse"/> reads back as this machine with <paramref name="kernel"/>.</summary>
    public static byte[] Encode(byte[] kernel, int memoryStep = 30, int cpus = 1, int initrdLength = 0, int commandLineLength = 13)
    {
        int initrdUnits = initrdLength / 16;
        return [(byte)memoryStep, (byte)(cpus - 1), (byte)initrdUnits, (byte)(initrdUnits >> 8), (byte)commandLineLength, .. kernel];
    }

    public GuestMemory CreateMemory() => new(Layout.RamRegions(MemorySize));

    public BootRequest Request()
    {
        byte[] initrd = new byte[InitrdLength];
        initrd.AsSpan().Fill(0x5a);
        return new BootRequest(Kernel, "fuzz-kernel")
        {
            Initrd = initrd,
            InitrdPath = "fuzz-initrd",
            CommandLine = new string('c', CommandLineLength),
            CpuCount = CpuCount,
        };
    }

    /// <summary>
    /// Whether <paramref name="e"/> is one of the errors the loaders document for a bad image or command line:
    /// <see cref="InvalidKernelImageException"/>, or <see cref="ArgumentException"/> itself (a command line longer than
    /// the kernel takes; not its subclasses, which would mean a bad argument of ours).
    /// </summary>
    public static bool IsDocumentedError(Exception e) => e is InvalidKernelImageException || e.GetType() == typeof(ArgumentException);

    /// <summary>Loads with <paramref name="load"/> and checks what the loader says it did against guest memory.</summary>
    public void LoadAndCheck(Func<GuestMemory, BootRequest, BootResult> load)
    {
        using GuestMemory memory = CreateMemory();
        BootRequest request = Request();
        BootResult result;
        try
        {
            result = load(memory, request);
        }
        catch (Exception e) when (IsDocumentedError(e))
        {
            Rejection.Note(e);
            return;
        }
        Check(memory, request, result);
    }

    /// <summary>The loader's promises: everything it placed lies in RAM, and the initrd does not overlap the kernel.</summary>
    private static void Check(GuestMemory memory, BootRequest request, BootResult r)
    {
        FuzzCheckException.Check(r.KernelEnd > r.KernelStart, $"kernel range [0x{r.KernelStart:x}, 0x{r.KernelEnd:x}) is empty or reversed");
        FuzzCheckException.Check(memory.Contains(r.KernelStart, r.KernelEnd - r.KernelStart),
            $"kernel range [0x{r.KernelStart:x}, 0x{r.KernelEnd:x}) is not all guest RAM");
        FuzzCheckException.Check(r.KernelStart >= Layout.HighMemoryStart, $"kernel at 0x{r.KernelStart:x} is below 1 MiB, over the boot tables");
        FuzzCheckException.Check(memory.Contains(r.CommandLineAddress, (ulong)request.CommandLine.Length + 1), "the command line is not in RAM");
        if (request.Initrd.IsEmpty)
        {
            FuzzCheckException.Check(r.InitrdAddress is null && r.InitrdSize == 0, "an initrd was placed though there is none");
            return;
        }
        FuzzCheckException.Check(r.InitrdAddress is not null && r.InitrdSize == (ulong)request.Initrd.Length, "the initrd was not placed, or not whole");
        ulong initrd = r.InitrdAddress!.Value;
        FuzzCheckException.Check(memory.Contains(initrd, r.InitrdSize), $"initrd at 0x{initrd:x} of 0x{r.InitrdSize:x} bytes is not all guest RAM");
        FuzzCheckException.Check(initrd + r.InitrdSize <= r.KernelStart || initrd >= r.KernelEnd,
            $"initrd [0x{initrd:x}, 0x{initrd + r.InitrdSize:x}) overlaps the kernel [0x{r.KernelStart:x}, 0x{r.KernelEnd:x})");
        FuzzCheckException.Check(initrd + r.InitrdSize <= Layout.FourGiB, $"initrd at 0x{initrd:x} ends above 4 GiB");
        byte[] back = new byte[r.InitrdSize];
        memory.Read(initrd, back);
        FuzzCheckException.Check(back.AsSpan().SequenceEqual(request.Initrd.Span), "the initrd in guest memory differs from the file (something overwrote it)");
    }
}
