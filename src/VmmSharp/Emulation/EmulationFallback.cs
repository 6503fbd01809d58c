using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;

namespace VmmSharp.Emulation;

/// <summary>
/// Finishes, in the VMM, the instructions KVM's emulator gives up on (KVM_EXIT_INTERNAL_ERROR, emulation failure), as
/// Seoul's invalid-state path did on NOVA: the InternalError portal of each vCPU it is registered on. It takes the
/// instruction's bytes from the exit (or reads them through its own page walk), decodes them with Iced and emulates
/// <c>int3</c>/<c>int n</c>, <c>cmpxchg16b</c>, <c>verw</c>, <c>fwait</c>/<c>fnclex</c>/<c>emms</c>, <c>clwb</c>,
/// <c>ldmxcsr</c>/<c>stmxcsr</c>, <c>xgetbv</c>, the <c>xsave</c>/<c>xrstor</c> family and SSE/AVX moves to RAM or MMIO.
/// Exceptions these raise (#PF with CR2 and error code, #GP, #UD, #NM, #MF) are injected into the guest. Anything
/// else goes to the handler given at registration, or ends the run with the decoded instruction in the message.
/// </summary>
/// <remarks>
/// The portal's MTD is <see cref="RequiredMtd"/>: registers, segments, control registers and events, all in KVM's
/// sync-regs area, so <c>int3</c> or <c>cmpxchg16b</c> costs no state ioctl. The x87/SSE state (KVM_GET_FPU), the XSAVE
/// state (KVM_GET_XSAVE) and XCR0 (KVM_GET_XCRS) are fetched only by the instructions that use them, and written back
/// only when changed. One instance serves a VM; its <see cref="Statistics"/> count for all its vCPUs.
/// </remarks>
public sealed class EmulationFallback
{
    /// <summary>The state groups the fallback's portal transfers.</summary>
    public const Mtd RequiredMtd = Mtd.Gpr | Mtd.CsSs | Mtd.DsEs | Mtd.FsGs | Mtd.Ldtr | Mtd.Gdtr | Mtd.Idtr | Mtd.Cr | Mtd.Efer | Mtd.Inj | Mtd.Qual;

    private const uint EmulationFailure = 1;

    private readonly IGuestPhysicalSpace _space;
    private uint _mxcsrMask;

    /// <summary>Creates the fallback for a VM whose guest-physical space is <paramref name="space"/>.</summary>
    public EmulationFallback(IGuestPhysicalSpace space, EmulationStatistics? statistics = null)
    {
        ArgumentNullException.ThrowIfNull(space);
        _space = space;
        Statistics = statistics ?? new EmulationStatistics();
    }

    /// <summary>The instructions emulated so far, per mnemonic.</summary>
    public EmulationStatistics Statistics { get; }

    /// <summary>
    /// Called when an x87 error is pending at <c>fwait</c>/<c>emms</c> while CR0.NE is clear: the legacy FERR# signal
    /// (on a PC, IRQ 13). Null: ignored.
    /// </summary>
    public Action? FloatingPointError { get; init; }

    /// <summary>
    /// Fetches every instruction through the fallback's own page walk, even where the exit carries its bytes: what a
    /// host without <c>KVM_CAP_EXIT_ON_EMULATION_FAILURE</c> gives. For tests of that path on hosts that supply them.
    /// </summary>
    internal bool IgnoreExitBytes { get; init; }

    /// <summary>
    /// Registers the fallback as <paramref name="vcpu"/>'s InternalError portal. Internal errors that are not emulation
    /// failures, and instructions the fallback does not emulate, go to <paramref name="otherwise"/>, which sees
    /// <see cref="RequiredMtd"/> plus <paramref name="otherwiseMtd"/>; with none, they end the run with a clear error.
    /// Returns false where the dispatcher refuses the portal (see <see cref="VcpuDispatcher.Register"/>).
    /// </summary>
    public bool Register(VcpuDispatcher vcpu, VcpuHandler? otherwise = null, Mtd otherwiseMtd = Mtd.None)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        return vcpu.Register(VcpuEvent.InternalError, RequiredMtd | otherwiseMtd, CreateHandler(otherwise));
    }

    /// <summary>
    /// The InternalError handler for one vCPU, for a VMM that composes its own portal (whose MTD must include
    /// <see cref="RequiredMtd"/>). Each vCPU needs its own: the handler keeps per-vCPU decode state.
    /// </summary>
    public VcpuHandler CreateHandler(VcpuHandler? otherwise = null) => new VcpuEmulator(this, otherwise).Handle;

    /// <summary>MXCSR_MASK, the MXCSR bits this CPU implements, from the vCPU's FXSAVE area (read once).</summary>
    private uint MxcsrMask(KvmVcpu vcpu)
    {
        uint mask = Volatile.Read(ref _mxcsrMask);
        if (mask == 0)
        {
            vcpu.GetXsave(out KvmXsave area);
            mask = BitConverter.ToUInt32(((ReadOnlySpan<byte>)area)[28..32]);
            mask = mask == 0 ? 0xffbf : mask; // zero means the architectural default
            Volatile.Write(ref _mxcsrMask, mask);
        }
        return mask;
    }

    /// <summary>The per-vCPU part: its decoder, its context and its instruction buffer, reused for every exit.</summary>
    private sealed class VcpuEmulator(EmulationFallback fallback, VcpuHandler? otherwise)
    {
        private readonly EmulationContext _context = new(fallback._space);
        // Built at the vCPU's first emulation failure, not with the machine: Iced's decoder tables cost ~0.6 ms of CPU
        // at every start (a snapshot restore included), and most runs never need them.
        private InstructionDecoder? _decoder;
        private readonly byte[] _bytes = new byte[InstructionFetch.MaxLength];

        public void Handle(VcpuState state)
        {
            InternalErrorExit exit = state.InternalError;
            if (exit.Suberror != EmulationFailure)
            {
                Otherwise(state, null);
                return;
            }
            EmulationContext context = _context;
            context.Begin(state);
            try
            {
                int length = InstructionFetch.Fetch(context, fallback.IgnoreExitBytes ? default : exit.InstructionBytes, _bytes);
                if (length == 0)
                {
                    return; // the fetch's #PF is injected
                }
                InstructionDecoder decoder = _decoder ??= new InstructionDecoder();
                FallbackOperation operation = decoder.Decode(_bytes.AsSpan(0, length), context.Bitness, state.Rip, out Instruction instruction);
                if (operation == FallbackOperation.Unsupported)
                {
                    if (decoder.Truncated && length < InstructionFetch.MaxLength && FaultOnRest(context, length))
                    {
                        return;
                    }
                    fallback.Statistics.NotHandled();
                    context.End();
                    Otherwise(state, instruction);
                    return;
                }
                Execute(context, operation, instruction);
                fallback.Statistics.Emulated(instruction.Mnemonic, context.Faulted);
            }
            finally
            {
                if (context.State is not null)
                {
                    context.End();
                }
            }
        }

        private void Execute(EmulationContext context, FallbackOperation operation, in Instruction instruction)
        {
            switch (operation)
            {
                case FallbackOperation.SoftwareInterrupt: SoftwareInterrupts.Execute(context, instruction); break;
                case FallbackOperation.CompareExchange16: CompareExchange16.Execute(context, instruction); break;
                case FallbackOperation.VerifyWrite: VerifyWrite.Execute(context, instruction); break;
                case FallbackOperation.X87Control: X87Control.Execute(context, instruction, fallback.FloatingPointError); break;
                case FallbackOperation.Mxcsr: MxcsrAccess.Execute(context, instruction, fallback.MxcsrMask(context.State.Vcpu)); break;
                case FallbackOperation.GetExtendedControl: ExtendedControl.Execute(context, instruction); break;
                case FallbackOperation.ExtendedStateSave or FallbackOperation.ExtendedStateRestore:
                    ExtendedState.Execute(context, instruction, fallback.MxcsrMask(context.State.Vcpu));
                    break;
                case FallbackOperation.CacheLineWriteBack: CacheLineWriteBack.Execute(context, instruction); break;
                default: VectorMoves.Execute(context, instruction); break;
            }
        }

        /// <summary>The instruction runs on into a page the fetch could not read: the #PF of that fetch.</summary>
        private static bool FaultOnRest(EmulationContext context, int length)
        {
            ulong rip = context.State.Rip;
            ulong linear = context.Bitness == 64 ? rip : (context.State.Cs.Base + rip) & 0xffff_ffff;
            ulong next = context.Bitness == 64 ? linear + (ulong)length : (linear + (ulong)length) & 0xffff_ffff;
            AccessKind fetch = AccessKind.Fetch | (context.Cpl == 3 ? AccessKind.User : 0);
            return !context.TryTranslate(next, fetch, out _);
        }

        private void Otherwise(VcpuState state, Instruction? instruction)
        {
            if (otherwise is not null)
            {
                otherwise(state);
                return;
            }
            InternalErrorExit exit = state.InternalError;
            string what = instruction is { } i ? $"{i} at RIP 0x{i.IP:x}, which the emulation fallback does not handle"
                : $"KVM internal error, suberror {exit.Suberror}";
            throw new VmmException($"vCPU {state.Id.Value}: {what}; {FaultReport.Describe(state.Vcpu, null, exit.InstructionBytes)}");
        }
    }
}
