//! Safe runtime SIMD dispatch through pulp: loops compiled for the best instruction set of the
//! CPU, the same bytes on every path.

/// A loop nest to run compiled for the best instruction set of this CPU (AVX-512 or AVX2/FMA on x86-64
/// through pulp's safe runtime dispatch, else the baseline), so the plain slice loops inside
/// autovectorise wider. `run` must be `#[inline(always)]` (and so must what it calls that holds
/// loops): only inlined code gets the wider instruction set. Integer and IEEE float arithmetic
/// (Rust never contracts `a * b + c` into an FMA) give the same bits on every path.
pub(crate) trait Vectorized {
    type Out;
    fn run(self) -> Self::Out;
}

struct Dispatch<J>(J);

impl<J: Vectorized> pulp::WithSimd for Dispatch<J> {
    type Output = J::Out;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> J::Out {
        self.0.run()
    }
}

/// Runs `job` through [`Vectorized`] dispatch.
pub(crate) fn vectorized<J: Vectorized>(job: J) -> J::Out {
    pulp::Arch::new().dispatch(Dispatch(job))
}

/// Runs `job` on the baseline path only (tests compare it with [`vectorized`]).
#[cfg(test)]
pub(crate) fn scalar<J: Vectorized>(job: J) -> J::Out {
    use pulp::WithSimd;
    Dispatch(job).with_simd(pulp::Scalar::new())
}

/// Implements [`Vectorized`] for a struct of borrowed inputs with an inlined body.
macro_rules! vectorized_job {
    ($(#[$m:meta])* struct $name:ident<$lt:lifetime $(, $g:ident: $b:path)*> { $($f:ident: $t:ty),* $(,)? } -> $out:ty $body:block) => {
        $(#[$m])*
        struct $name<$lt $(, $g: $b)*> { $($f: $t),* }
        impl<$lt $(, $g: $b)*> $crate::kernels::common::Vectorized for $name<$lt $(, $g)*> {
            type Out = $out;
            #[inline(always)]
            #[allow(unused_variables)]
            fn run(self) -> $out {
                let $name { $($f),* } = self;
                $body
            }
        }
    };
}
pub(crate) use vectorized_job;
